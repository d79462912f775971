//! What the org's routes take and give: one API request ([`Req`]), what a route produced
//! ([`Answer`]), and how an answer goes on the wire (Salesforce's JSON content type, an error
//! array, a connection dropped mid-body, a body cut short).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::contract::rules::RecordError;
use crate::sim::Timestamp;

/// The body of an answer.
pub(super) enum Payload {
    Json(Value),
    Csv(String),
    /// An HTML page (what Salesforce's edge sends with a gateway error).
    Html(String),
    Empty,
}

/// What a route produced, before headers common to every answer are added.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Payload,
    pub headers: Vec<(&'static str, String)>,
    pub records: Option<usize>,
    pub outcome: Option<(usize, usize)>,
    pub error_code: Option<String>,
}

impl Answer {
    pub fn ok(status: StatusCode, body: Value) -> Self {
        Answer {
            status,
            body: Payload::Json(body),
            headers: Vec::new(),
            records: None,
            outcome: None,
            error_code: None,
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Answer {
            body: Payload::Empty,
            ..Answer::ok(status, Value::Null)
        }
    }

    pub fn html(status: StatusCode, page: String) -> Self {
        Answer {
            body: Payload::Html(page),
            ..Answer::ok(status, Value::Null)
        }
    }

    pub fn csv(text: String) -> Self {
        Answer {
            body: Payload::Csv(text),
            ..Answer::ok(StatusCode::OK, Value::Null)
        }
    }

    pub fn error(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        fields: &[String],
    ) -> Self {
        let message = message.into();
        Answer {
            error_code: Some(code.to_string()),
            ..Answer::ok(
                status,
                json!([{ "message": message, "errorCode": code, "fields": fields }]),
            )
        }
    }

    pub fn not_found() -> Self {
        Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        )
    }

    pub fn from_record_error(e: &RecordError) -> Self {
        let status = match e.code.as_str() {
            "NOT_FOUND" | "ENTITY_IS_DELETED" => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        Answer::error(status, &e.code, e.message.clone(), &e.fields)
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The HTTP response: the body with its content type, then the answer's headers.
    pub fn into_response(self) -> Response {
        let mut resp = match self.body {
            Payload::Json(v) => json_response(self.status, &v),
            Payload::Csv(text) => {
                let mut r = (self.status, text).into_response();
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("text/csv"));
                r
            }
            Payload::Html(page) => {
                let mut r = (self.status, page).into_response();
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("text/html"));
                r
            }
            Payload::Empty => self.status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }

    /// The JSON body, if any (composite subrequests read it).
    pub fn json(&self) -> Value {
        match &self.body {
            Payload::Json(v) => v.clone(),
            Payload::Csv(s) | Payload::Html(s) => Value::String(s.clone()),
            Payload::Empty => Value::Null,
        }
    }
}

/// One API request, relative to `/services/data/vNN.N`.
pub(super) struct Req<'a> {
    pub method: Method,
    pub seg: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: Timestamp,
    pub api_version: &'a str,
}

impl Req<'_> {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A body that could not be read (over the 150 MB limit, or cut off), answered the way
/// Salesforce answers errors: a JSON array of `{message, errorCode}` with the status.
pub(super) fn body_refused(rejection: &axum::extract::rejection::BytesRejection) -> Response {
    let status = rejection.status();
    let (code, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
        (
            "REQUEST_ENTITY_TOO_LARGE",
            "The request body exceeds the limit of 150 MB".to_string(),
        )
    } else {
        (
            "JSON_PARSER_ERROR",
            format!(
                "The request body could not be read: {}",
                rejection.body_text()
            ),
        )
    };
    json_response(status, &json!([{"message": message, "errorCode": code}]))
}

/// `Content-Type` of Salesforce's JSON answers (the charset parameter included).
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// A JSON answer with Salesforce's `Content-Type`.
pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
    resp
}

/// A response whose body fails mid-stream: the client sees the connection drop.
pub(super) fn broken_response(status: StatusCode) -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by the mock",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
    resp
}

/// The first half of `text` (cut on a character boundary): an answer whose body is cut short.
pub(super) fn cut_short(text: &str) -> &str {
    let cut = text.len() / 2;
    let cut = (0..=cut)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[..cut]
}

/// The answer of a server that failed after doing the work: a 500 with an HTML page, as
/// Salesforce's front end sends it.
pub(super) fn lost_server_error() -> Response {
    let mut resp = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "<html><body>An internal server error has occurred</body></html>",
    )
        .into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/html"));
    resp
}
