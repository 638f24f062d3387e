//! The loopback HTTP server behind `AWS_LAMBDA_RUNTIME_API`: one listener
//! serving the Runtime (`2018-06-01`), Extensions (`2020-01-01`) and Telemetry
//! (`2022-07-01`) APIs, as Lambda serves them on one address, with the
//! helpers their handlers share (bounded body reads, Lambda-style errors).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::state::Shared;
use super::{extensions_api, runtime_api, telemetry_api};

/// A response of any API.
pub(crate) type Reply = Response<Full<Bytes>>;

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::task::yield_now().await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| route(shared.clone(), req));
            // A broken connection ends only itself.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    let reply = match (segments.as_slice(), &method) {
        (["2018-06-01", "runtime", "invocation", "next"], &Method::GET) => {
            runtime_api::next(&shared).await
        }
        (["2018-06-01", "runtime", "invocation", id, "response"], &Method::POST) => {
            let id = (*id).to_string();
            runtime_api::response(&shared, id, req).await
        }
        (["2018-06-01", "runtime", "invocation", id, "error"], &Method::POST) => {
            let id = (*id).to_string();
            runtime_api::error(&shared, id, req).await
        }
        (["2018-06-01", "runtime", "init", "error"], &Method::POST) => {
            runtime_api::init_error(&shared, req).await
        }
        (["2020-01-01", "extension", "register"], &Method::POST) => {
            extensions_api::register(&shared, req).await
        }
        (["2020-01-01", "extension", "event", "next"], &Method::GET) => {
            extensions_api::next(&shared, req).await
        }
        (["2020-01-01", "extension", "init", "error"], &Method::POST) => {
            extensions_api::report_error(&shared, req, extensions_api::ErrorKind::Init).await
        }
        (["2020-01-01", "extension", "exit", "error"], &Method::POST) => {
            extensions_api::report_error(&shared, req, extensions_api::ErrorKind::Exit).await
        }
        (["2022-07-01", "telemetry"], &Method::PUT) => telemetry_api::subscribe(&shared, req).await,
        (
            ["2018-06-01", "runtime", ..]
            | ["2020-01-01", "extension", ..]
            | ["2022-07-01", "telemetry"],
            _,
        ) => error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed on this path",
        ),
        _ => error_reply(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no API at {path}"),
        ),
    };
    Ok(reply)
}

/// A JSON response.
pub(crate) fn json_reply(status: StatusCode, body: &serde_json::Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Lambda's error body: `{"errorMessage": …, "errorType": …}`.
pub(crate) fn error_reply(status: StatusCode, error_type: &str, message: &str) -> Reply {
    json_reply(
        status,
        &serde_json::json!({ "errorMessage": message, "errorType": error_type }),
    )
}

/// `202 Accepted` with `{"status":"OK"}`, Lambda's answer to a posted result.
pub(crate) fn accepted() -> Reply {
    json_reply(StatusCode::ACCEPTED, &serde_json::json!({ "status": "OK" }))
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooLarge,
    Broken,
}

/// Reads a request body of at most `limit` bytes.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

/// A header's value as text.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
