//! The SMTP client keeps its connections (notifications/smtp.rs): messages go one after the
//! other on one connection, a connection the server closed is replaced without losing the
//! message, and a refusal is an error that leaves the next message unaffected. Against the
//! loopback sink of smtp.rs.

use rightsflow::notifications::mail::{EmailPayload, MailError, Mailer};
use rightsflow::notifications::templates::RenderedEmail;

use crate::smtp::SmtpSink;

fn email(i: usize) -> EmailPayload {
    EmailPayload {
        to: format!("subject{i}@example.com"),
        locale: "zh-CN".into(),
        message: "received".into(),
        content: RenderedEmail {
            subject: format!("我们已收到您的请求 / We received your request ({i})"),
            text: "您的请求已收到。\nWe received your request.\n".into(),
            html: "<p>您的请求已收到。</p><p>We received your request.</p>".into(),
        },
    }
}

/// Sends on a blocking thread, as the outbox's lanes do.
async fn send(mailer: &std::sync::Arc<Mailer>, i: usize) -> Result<(), MailError> {
    let m = mailer.clone();
    tokio::task::spawn_blocking(move || m.send(&format!("row-{i}"), &email(i)))
        .await
        .unwrap()
}

#[tokio::test]
async fn connections_are_kept_replaced_when_closed_and_survive_a_refusal() {
    let sink = SmtpSink::start().await;
    let mailer = std::sync::Arc::new(
        Mailer::smtp(&sink.url(), "Rightsflow <privacy@example.com>", 2).unwrap(),
    );

    for i in 0..5 {
        send(&mailer, i).await.unwrap();
    }
    let got = sink.messages();
    assert_eq!(got.len(), 5);
    assert_eq!(
        sink.sessions(),
        1,
        "five messages in a row share one connection"
    );
    assert_eq!(got[4].message_id(), "<row-4@example.com>");

    // The server drops its idle clients: the next message still goes, on a new connection.
    sink.hang_up();
    send(&mailer, 5).await.unwrap();
    assert_eq!(sink.messages().len(), 6);
    assert_eq!(sink.to("subject5@example.com").len(), 1, "sent once");
    assert_eq!(sink.sessions(), 2);

    // A refusal fails that message (the outbox retries it later) and nothing else.
    sink.refuse(true);
    let refused = send(&mailer, 6).await;
    assert!(
        matches!(&refused, Err(MailError::Send(why)) if why.contains("550")),
        "{refused:?}"
    );
    sink.refuse(false);
    send(&mailer, 7).await.unwrap();
    assert_eq!(sink.messages().len(), 7);
    assert!(sink.to("subject6@example.com").is_empty());
    assert_eq!(sink.to("subject7@example.com").len(), 1);
}

#[tokio::test]
async fn a_closed_port_fails_at_once_with_a_clear_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mailer = std::sync::Arc::new(
        Mailer::smtp(
            &format!("smtp://127.0.0.1:{port}"),
            "Rightsflow <privacy@example.com>",
            1,
        )
        .unwrap(),
    );
    let started = std::time::Instant::now();
    let failed = send(&mailer, 1).await;
    assert!(
        matches!(&failed, Err(MailError::Send(why)) if why.contains("connecting")),
        "{failed:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
