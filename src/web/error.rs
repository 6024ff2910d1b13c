//! The API's one error shape, `{"error": {"code": "...", "message": "..."}}`, with a stable code
//! and a message in the caller's language (Chinese unless `Accept-Language` prefers English).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::Locale;
use crate::service::ServiceError;

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    zh: String,
    en: String,
    /// Seconds, sent as `Retry-After` (rate limits).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        zh: impl Into<String>,
        en: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            zh: zh.into(),
            en: en.into(),
            retry_after: None,
        }
    }

    /// 422: the body or query was well-formed but a value is not acceptable.
    pub fn invalid(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, zh, en)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "未找到该资源",
            "Not found",
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "请先登录",
            "Authentication required",
        )
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后再试",
            "Internal error; please try again later",
        )
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Seconds to wait, for `Retry-After` (rate limits).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.retry_after
    }

    /// Puts `Retry-After` on a page that shows this error (a rate limit), if it has one.
    pub fn set_retry_after(&self, res: &mut actix_web::HttpResponse) {
        if let Some(seconds) = self.retry_after {
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(seconds),
            );
        }
    }

    /// The message in `locale` (for pages, which render errors themselves).
    pub fn message(&self, locale: Locale) -> &str {
        match locale {
            Locale::ZhCn => &self.zh,
            Locale::En => &self.en,
        }
    }

    fn body(&self, locale: Locale) -> String {
        json!({ "error": { "code": self.code, "message": self.message(locale) } }).to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the code: messages may quote what the caller sent.
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

/// The English body, kept on the response so `localize_errors` can swap it in.
#[derive(Clone)]
struct EnglishBody(String);

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        if let Some(seconds) = self.retry_after {
            builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        let mut res = builder.body(self.body(Locale::ZhCn));
        res.extensions_mut()
            .insert(EnglishBody(self.body(Locale::En)));
        res
    }
}

/// Middleware: serves error bodies in English to callers whose `Accept-Language` prefers it.
/// (`ResponseError` cannot see the request, hence this step.)
pub async fn localize_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let locale = super::extract::header_locale(req.headers());
    let res = next.call(req).await?;
    let english = (locale == Locale::En)
        .then(|| res.response().extensions().get::<EnglishBody>().cloned())
        .flatten();
    Ok(match english {
        Some(EnglishBody(body)) => res.map_body(|_, _| BoxBody::new(body)),
        None => res.map_into_boxed_body(),
    })
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use ServiceError as S;
        match e {
            S::NotFound => ApiError::not_found(),
            S::Transition(t) => {
                let status = if t.is_permission() {
                    StatusCode::FORBIDDEN
                } else if t.is_incomplete() {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::CONFLICT
                };
                ApiError::new(status, t.code(), t.message_zh(), t.message_en())
            }
            S::Stale { current } => ApiError::new(
                StatusCode::CONFLICT,
                "stale_version",
                format!("请求已被他人更新（当前版本 {current}），请刷新后重试"),
                format!("The request changed since you loaded it (now version {current}); reload and try again"),
            ),
            S::Busy => ApiError::new(StatusCode::CONFLICT, "busy", "该请求正在被他人修改，请重试", "The request is being changed by someone else; try again"),
            S::UnknownAssignee => ApiError::invalid("unknown_assignee", "找不到可以接手此请求的在职工作人员", "No active staff member can take this assignment"),
            S::ReceivedInFuture => ApiError::invalid("received_in_future", "收到时间不能晚于当前时间", "The receipt time lies in the future"),
            S::InvalidCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "邮箱或密码错误", "Email or password is wrong"),
            S::WeakPassword(n) => ApiError::invalid("weak_password", format!("密码至少需要 {n} 个字符"), format!("The password must be at least {n} characters")),
            S::DuplicateStaff => ApiError::new(StatusCode::CONFLICT, "duplicate_staff", "该邮箱的工作人员账号已存在", "A staff member with this email exists already"),
            S::Unauthenticated => ApiError::unauthorized(),
            S::WrongCode { attempts_left } => {
                let (zh, en) = match attempts_left {
                    Some(n) => (format!("验证码不正确，还可以再试 {n} 次"), format!("The code is wrong; attempts left: {n}")),
                    None => ("验证码不正确".to_owned(), "The code is wrong".to_owned()),
                };
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_code", zh, en)
            }
            S::CodeExpired => ApiError::new(StatusCode::UNAUTHORIZED, "code_expired", "验证码已过期，请重新获取", "The code has expired; ask for a new one"),
            S::ChallengeLocked => ApiError::new(
                StatusCode::LOCKED,
                "challenge_locked",
                "验证码错误次数过多，已被锁定，请重新获取验证码",
                "Too many wrong codes; this code is locked. Ask for a new one",
            ),
            S::BadLink => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_link", "该链接无效、已过期或已被使用", "The link is invalid, expired or already used"),
            S::BadPlatformToken => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_platform_token", "平台登录凭证无效或已过期", "The platform sign-in token is invalid or expired"),
            S::TooSoon { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_soon",
                format!("请在 {retry_after} 秒后再获取新的验证码"),
                format!("A new code can be sent in {retry_after} s"),
            ),
            S::TotpRequired => ApiError::new(StatusCode::UNAUTHORIZED, "totp_required", "此账号已开启两步验证，请输入验证器应用中的 6 位验证码", "This account uses two-step verification: enter the 6-digit code from your authenticator app"),
            S::TotpInvalid => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_totp", "两步验证码不正确、已过期或已使用过", "The two-step code is wrong, has expired or was used already"),
            S::TotpEnrolmentRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "totp_enrolment_required",
                "管理员要求此账号使用两步验证：请先登录控制台完成设置",
                "An admin requires two-step verification for this account: sign in to the console and set it up first",
            ),
            S::NotPermitted => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_permitted",
                "您的角色无权执行此操作",
                "Your role does not allow this",
            ),
            S::WaiveReasonMissing => ApiError::invalid("reason_required", "请说明无法完成的原因（如法定保存期限）", "Say why it cannot be done (for example a legal retention period)"),
            S::InvalidFilter(field) => ApiError::invalid("invalid_filter", format!("筛选条件 {field} 无效"), format!("The filter {field} is not valid")),
            S::UnknownDestination => ApiError::invalid("unknown_destination", "没有这个接收方，请从可选的接收方中选择", "No such destination: choose one of those offered"),
            S::NotRestricted => ApiError::new(StatusCode::CONFLICT, "not_restricted", "该请求没有正在生效的限制处理", "This request has no restriction in force"),
            S::AlreadyLifting => ApiError::new(StatusCode::CONFLICT, "already_lifting", "该限制已在解除中或已解除", "The restriction is being lifted already, or was"),
            S::DoneNoteMissing => ApiError::invalid("note_required", "请说明已完成的处理", "Say what was done"),
            S::NotManual => ApiError::new(StatusCode::CONFLICT, "not_manual", "只有人工任务可以手动标记完成", "Only a manual task is marked done by hand"),
            S::TaskEnded => ApiError::new(StatusCode::CONFLICT, "task_ended", "该任务已结束", "The task has ended already"),
            S::ResultNotAllowed => ApiError::new(
                StatusCode::CONFLICT,
                "result_not_allowed",
                "只有已批准、正在办理的查阅或可携带请求才能附上结果",
                "A result can only be attached to an access or portability request that is approved and in progress",
            ),
            S::Store(crate::storage::StoreError::Unavailable(_)) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "数据库暂时不可用，请稍后再试",
                "The database is unavailable; please try again later",
            ),
            S::Store(e) => {
                tracing::error!(error = %e, "storage error");
                ApiError::internal()
            }
            S::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task failed");
        ApiError::internal()
    }
}

/// Runs blocking work (diesel, argon2) off the async executor, inside the caller's span so its
/// log lines carry the request id.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    Ok(actix_web::web::block(move || span.in_scope(f)).await??)
}
