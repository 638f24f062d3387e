//! A Rust Lambda function on the `lambda_runtime` crate, as its README writes
//! one: it echoes the event and what its `Context` says, so the emulator's
//! tests can check what a real Runtime API client sees. An event with
//! `"fail": "message"` returns an error instead.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.to_string().into());
    }
    Ok(json!({
        "echo": payload,
        "requestId": context.request_id,
        "deadlineMs": context.deadline,
        "invokedFunctionArn": context.invoked_function_arn,
        "traceId": context.xray_trace_id,
        "functionName": context.env_config.function_name,
        "memoryMb": context.env_config.memory,
        "version": context.env_config.version,
        "logGroup": context.env_config.log_group,
        "logStream": context.env_config.log_stream,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
