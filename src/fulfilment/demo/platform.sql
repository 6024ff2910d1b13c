-- The WEIMACMS demo platform: the systems behind the privacy policy's data categories, with a
-- few users. Portable between SQLite and PostgreSQL (timestamps are text). See platform.toml.

CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    name TEXT,
    gender TEXT,
    birth_date TEXT,
    phone VARCHAR(32),
    email VARCHAR(255),
    interests TEXT,
    id_card TEXT,
    processing_restricted BOOLEAN NOT NULL DEFAULT FALSE,
    -- What the user agreed to in the platform's settings (the consent ledger's purposes).
    consent_recommendations BOOLEAN NOT NULL DEFAULT TRUE,
    consent_partner_sharing BOOLEAN NOT NULL DEFAULT TRUE,
    consent_location BOOLEAN NOT NULL DEFAULT TRUE,
    consent_marketing BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX users_email ON users (email);
CREATE INDEX users_phone ON users (phone);

CREATE TABLE orders (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    order_no TEXT NOT NULL,
    item TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    address TEXT,
    ordered_at TEXT NOT NULL,
    processing_restricted BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX orders_user ON orders (user_id);

CREATE TABLE browsing_history (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    url TEXT NOT NULL,
    viewed_at TEXT NOT NULL
);
CREATE INDEX browsing_history_user ON browsing_history (user_id);

CREATE TABLE search_history (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    query TEXT NOT NULL,
    searched_at TEXT NOT NULL
);
CREATE INDEX search_history_user ON search_history (user_id);

CREATE TABLE locations (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    city TEXT,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    recorded_at TEXT NOT NULL
);
CREATE INDEX locations_user ON locations (user_id);

CREATE TABLE devices (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    model TEXT,
    os TEXT,
    ip_address TEXT,
    last_seen_at TEXT
);
CREATE INDEX devices_user ON devices (user_id);

INSERT INTO users (id, name, gender, birth_date, phone, email, interests, id_card) VALUES
    (1001, '李雷', '男', '1990-04-12', '13800138000', 'li.lei@example.com', '摄影,徒步', '110101199004120000'),
    (1002, '韩梅梅', '女', '1992-09-30', '13900139000', 'han.meimei@example.com', '烘焙,旅行', '310101199209300000'),
    (1003, '王芳', '女', '1985-01-08', '13700137000', 'wang.fang@example.com', '阅读', '440101198501080000');

INSERT INTO orders (id, user_id, order_no, item, amount_cents, address, ordered_at) VALUES
    (1, 1001, 'WM20260301001', '无线耳机', 29900, '北京市东城区东长安街 1 号', '2026-03-01 10:15:00'),
    (2, 1001, 'WM20260512002', '登山包', 45900, '北京市东城区东长安街 1 号', '2026-05-12 19:40:00'),
    (3, 1002, 'WM20260420003', '烤箱', 89900, '上海市黄浦区南京东路 2 号', '2026-04-20 08:05:00'),
    (4, 1003, 'WM20260611004', '台灯', 12900, '广州市越秀区北京路 3 号', '2026-06-11 21:30:00');

INSERT INTO browsing_history (id, user_id, url, viewed_at) VALUES
    (1, 1001, '/products/earphones', '2026-02-28 22:01:00'),
    (2, 1001, '/products/backpacks', '2026-05-10 12:30:00'),
    (3, 1002, '/products/ovens', '2026-04-19 09:12:00');

INSERT INTO search_history (id, user_id, query, searched_at) VALUES
    (1, 1001, '降噪耳机', '2026-02-28 21:58:00'),
    (2, 1002, '家用烤箱', '2026-04-19 09:10:00'),
    (3, 1003, '护眼台灯', '2026-06-11 21:20:00');

INSERT INTO locations (id, user_id, city, latitude, longitude, recorded_at) VALUES
    (1, 1001, '北京', 39.9087, 116.3975, '2026-05-12 19:38:00'),
    (2, 1002, '上海', 31.2397, 121.4998, '2026-04-20 08:00:00');

INSERT INTO devices (id, user_id, model, os, ip_address, last_seen_at) VALUES
    (1, 1001, 'Xiaomi 14', 'Android 15', '203.0.113.7', '2026-11-20 08:00:00'),
    (2, 1002, 'iPhone 15', 'iOS 19', '198.51.100.23', '2026-11-21 20:00:00'),
    (3, 1003, 'Huawei Mate 60', 'HarmonyOS 4', '192.0.2.44', '2026-11-22 12:00:00');
