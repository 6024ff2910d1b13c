//! Diesel's view of the tables (the same on both backends; see migrations/).

diesel::table! {
    staff_users (id) {
        id -> Text,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        locale -> Text,
        totp_secret -> Nullable<Text>,
        totp_enabled_at -> Nullable<Timestamp>,
        totp_last_step -> Nullable<BigInt>,
        totp_required -> Bool,
    }
}

diesel::table! {
    requests (id) {
        id -> Text,
        reference -> Text,
        kind -> Text,
        jurisdiction -> Text,
        status -> Text,
        locale -> Text,
        channel -> Text,
        subject_name -> Nullable<Text>,
        subject_email -> Nullable<Text>,
        subject_phone -> Nullable<Text>,
        details -> Text,
        received_at -> Timestamp,
        verified_at -> Nullable<Timestamp>,
        due_date -> Nullable<Date>,
        due_at -> Nullable<Timestamp>,
        due_warnings -> Text,
        acknowledge_date -> Nullable<Date>,
        acknowledge_at -> Nullable<Timestamp>,
        extended_at -> Nullable<Timestamp>,
        assignee_id -> Nullable<Text>,
        first_approval_by -> Nullable<Text>,
        approved_at -> Nullable<Timestamp>,
        fulfilment_started_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        rejection_reason -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        verified_methods -> Text,
        representative -> Nullable<Text>,
        platform_user_id -> Nullable<Text>,
        duplicate_of -> Nullable<Text>,
    }
}

diesel::table! {
    request_events (request_id, seq) {
        request_id -> Text,
        seq -> BigInt,
        at -> Timestamp,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        actor_role -> Nullable<Text>,
        command -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        details -> Text,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        request_id -> Nullable<Text>,
        event_seq -> Nullable<BigInt>,
        kind -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        run_after -> Timestamp,
        created_at -> Timestamp,
        last_error -> Nullable<Text>,
        parent_id -> Nullable<Text>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    inbox_messages (id) {
        id -> Text,
        request_id -> Text,
        message -> Text,
        locale -> Text,
        subject -> Text,
        body -> Text,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reminders_sent (request_id, kind, due_at) {
        request_id -> Text,
        kind -> Text,
        due_at -> Timestamp,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    verification_challenges (id) {
        id -> Text,
        request_id -> Text,
        channel -> Text,
        code_hash -> Text,
        expires_at -> Timestamp,
        attempts -> Integer,
        locked_at -> Nullable<Timestamp>,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    subject_sessions (id) {
        id -> Text,
        request_id -> Text,
        method -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(request_events -> requests (request_id));
diesel::joinable!(outbox -> requests (request_id));
diesel::table! {
    request_results (id) {
        id -> Text,
        request_id -> Text,
        file_name -> Text,
        content_type -> Text,
        body -> Binary,
        size -> BigInt,
        sha256 -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        downloads -> Integer,
        last_downloaded_at -> Nullable<Timestamp>,
        blob_id -> Nullable<Text>,
        key_id -> Nullable<Text>,
        chunks -> Integer,
        purged_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    result_chunks (blob_id, seq) {
        blob_id -> Text,
        seq -> Integer,
        bytes -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    staff_sessions (id) {
        id -> Text,
        staff_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    staff_sign_ins (id) {
        id -> Text,
        staff_id -> Nullable<Text>,
        outcome -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(inbox_messages -> requests (request_id));
diesel::joinable!(staff_sessions -> staff_users (staff_id));
diesel::joinable!(request_results -> requests (request_id));
diesel::table! {
    report_answered_days (day) {
        day -> Text,
        buckets -> Text,
    }
}

diesel::table! {
    report_received_days (day) {
        day -> Text,
        hours -> Text,
    }
}

diesel::table! {
    fulfilment_tasks (id) {
        id -> Text,
        request_id -> Text,
        system -> Text,
        action -> Text,
        status -> Text,
        outbox_id -> Text,
        result -> Nullable<Text>,
        created_at -> Timestamp,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(fulfilment_tasks -> requests (request_id));

diesel::table! {
    consent_events (id) {
        id -> Text,
        platform_user_id -> Nullable<Text>,
        email -> Nullable<Text>,
        purpose -> Text,
        granted -> Bool,
        source -> Text,
        request_id -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    subject_lookups (request_id, kind) {
        request_id -> Text,
        kind -> Text,
        digest -> Text,
    }
}

diesel::joinable!(subject_lookups -> requests (request_id));

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        actor_role -> Nullable<Text>,
        action -> Text,
        request_id -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    anonymised_requests (request_id) {
        request_id -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    job_ticks (job, tick) {
        job -> Text,
        tick -> BigInt,
        instance -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    request_tallies (status, kind, dated, shard) {
        status -> Text,
        kind -> Text,
        dated -> SmallInt,
        shard -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    rate_windows (limiter, key_digest, window_start) {
        limiter -> Text,
        key_digest -> Text,
        window_start -> BigInt,
        hits -> BigInt,
    }
}

diesel::table! {
    due_tallies (due_day, shard) {
        due_day -> Text,
        shard -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    drp_agents (id) {
        id -> Text,
        name -> Text,
        verify_key -> Text,
        callback_origin -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    drp_tokens (token_hash) {
        token_hash -> Text,
        agent_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    drp_requests (id) {
        id -> Text,
        request_id -> Nullable<Text>,
        agent_id -> Text,
        agent_request_id -> Nullable<Text>,
        exercise -> Text,
        regime -> Nullable<Text>,
        status_callback -> Nullable<Text>,
        outcome -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(drp_tokens -> drp_agents (agent_id));
diesel::joinable!(drp_requests -> requests (request_id));

diesel::table! {
    opendsr_controllers (id) {
        id -> Text,
        name -> Text,
        token_hash -> Text,
        callback_origin -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    opendsr_requests (controller_id, subject_request_id) {
        controller_id -> Text,
        subject_request_id -> Text,
        request_id -> Text,
        subject_request_type -> Text,
        regulation -> Text,
        api_version -> Nullable<Text>,
        status_callback_urls -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(opendsr_requests -> opendsr_controllers (controller_id));
diesel::joinable!(opendsr_requests -> requests (request_id));

diesel::allow_tables_to_appear_in_same_query!(
    opendsr_controllers,
    opendsr_requests,
    drp_agents,
    drp_tokens,
    drp_requests,
    anonymised_requests,
    due_tallies,
    rate_windows,
    request_tallies,
    audit_log,
    job_ticks,
    subject_lookups,
    staff_users,
    requests,
    request_events,
    outbox,
    inbox_messages,
    reminders_sent,
    verification_challenges,
    subject_sessions,
    request_results,
    result_chunks,
    staff_sessions,
    staff_sign_ins,
    fulfilment_tasks,
    consent_events
);
