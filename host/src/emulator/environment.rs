//! The environment variables Lambda gives the runtime and the extensions.
//!
//! Processes start from an empty environment, as in Lambda, with the variables
//! Lambda defines, then the function's own ([`EmulatorConfig::env`], which win).
//! Two concessions to running on a developer's machine: `PATH` and
//! `LD_LIBRARY_PATH` keep the host's entries after Lambda's (so the local
//! interpreter and its libraries are found), and `/var/task` in them is the
//! configured task root.
//!
//! Extensions get the subset Lambda documents: everything but `_HANDLER`,
//! `AWS_EXECUTION_ENV`, the log group and stream names, `LAMBDA_RUNTIME_DIR`
//! and the X-Ray daemon variables.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;

use super::config::EmulatorConfig;

/// Lambda's `PATH` for managed runtimes.
const LAMBDA_PATH: &str = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin";
/// Lambda's `LD_LIBRARY_PATH`; `/var/task` is replaced by the task root.
const LAMBDA_LD_LIBRARY_PATH: &str = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib";
/// Variables Lambda withholds from extensions.
const NOT_FOR_EXTENSIONS: &[&str] = &[
    "_HANDLER",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "LAMBDA_RUNTIME_DIR",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_PORT",
];

/// One process's environment, in the order the variables were set.
pub(crate) type EnvVars = Vec<(OsString, OsString)>;

/// The runtime's environment. `log_stream` is this environment's stream name.
pub(crate) fn runtime_env(config: &EmulatorConfig, api: SocketAddr, log_stream: &str) -> EnvVars {
    let task_root = config.task_root.as_os_str();
    let mut env: EnvVars = Vec::new();
    let mut set = |k: &str, v: &OsStr| env.push((OsString::from(k), v.to_os_string()));
    set("_HANDLER", OsStr::new(&config.handler));
    set("AWS_REGION", OsStr::new(&config.region));
    set("AWS_DEFAULT_REGION", OsStr::new(&config.region));
    set(
        "AWS_EXECUTION_ENV",
        OsStr::new(&format!("AWS_Lambda_{}", config.runtime_id)),
    );
    set(
        "AWS_LAMBDA_FUNCTION_NAME",
        OsStr::new(&config.function_name),
    );
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        OsStr::new(&config.memory_mb.to_string()),
    );
    set(
        "AWS_LAMBDA_FUNCTION_VERSION",
        OsStr::new(&config.function_version),
    );
    set(
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        OsStr::new(config.init_type.as_str()),
    );
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        OsStr::new(&format!("/aws/lambda/{}", config.function_name)),
    );
    set("AWS_LAMBDA_LOG_STREAM_NAME", OsStr::new(log_stream));
    set("AWS_LAMBDA_RUNTIME_API", OsStr::new(&api.to_string()));
    set("LAMBDA_TASK_ROOT", task_root);
    set("LAMBDA_RUNTIME_DIR", OsStr::new("/var/runtime"));
    set("LANG", OsStr::new("en_US.UTF-8"));
    set("TZ", OsStr::new(":UTC"));
    set(
        "PATH",
        &joined(LAMBDA_PATH, task_root, std::env::var_os("PATH")),
    );
    set(
        "LD_LIBRARY_PATH",
        &joined(
            LAMBDA_LD_LIBRARY_PATH,
            task_root,
            std::env::var_os("LD_LIBRARY_PATH"),
        ),
    );
    let mut python_path = task_root.to_os_string();
    for dir in &config.python_path {
        python_path.push(":");
        python_path.push(dir.as_os_str());
    }
    set("PYTHONPATH", &python_path);
    if let Some(wrapper) = &config.exec_wrapper {
        set("AWS_LAMBDA_EXEC_WRAPPER", wrapper.as_os_str());
    }
    for (k, v) in &config.env {
        env.retain(|(existing, _)| existing != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// An extension's environment: the runtime's, less what Lambda withholds.
pub(crate) fn extension_env(runtime_env: &EnvVars) -> EnvVars {
    runtime_env
        .iter()
        .filter(|(k, _)| !NOT_FOR_EXTENSIONS.iter().any(|hidden| k == hidden))
        .cloned()
        .collect()
}

/// Lambda's list with `/var/task` replaced, then the host's entries.
fn joined(lambda: &str, task_root: &OsStr, host: Option<OsString>) -> OsString {
    let mut out = OsString::new();
    for (i, entry) in lambda.split(':').enumerate() {
        if i > 0 {
            out.push(":");
        }
        match entry.strip_prefix("/var/task") {
            Some(rest) => {
                out.push(task_root);
                out.push(rest);
            }
            None => out.push(entry),
        }
    }
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        out.push(":");
        out.push(host);
    }
    out
}

/// Reads one variable of an environment built here.
#[cfg(test)]
fn get<'a>(env: &'a EnvVars, key: &str) -> Option<&'a OsStr> {
    env.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmulatorConfig {
        let mut c = EmulatorConfig::new(["python3"], "app.handler", "/srv/fn");
        c.env.push(("TZ".into(), "Europe/Paris".into()));
        c.env.push(("MY_SETTING".into(), "1".into()));
        c
    }

    #[test]
    fn runtime_gets_lambda_variables_and_function_env_wins() {
        let env = runtime_env(
            &config(),
            SocketAddr::from(([127, 0, 0, 1], 9001)),
            "2024/01/01/[$LATEST]ab",
        );
        assert_eq!(get(&env, "_HANDLER"), Some(OsStr::new("app.handler")));
        assert_eq!(
            get(&env, "AWS_LAMBDA_RUNTIME_API"),
            Some(OsStr::new("127.0.0.1:9001"))
        );
        assert_eq!(
            get(&env, "AWS_EXECUTION_ENV"),
            Some(OsStr::new("AWS_Lambda_python3.12"))
        );
        assert_eq!(
            get(&env, "AWS_LAMBDA_LOG_GROUP_NAME"),
            Some(OsStr::new("/aws/lambda/pyrometer-function"))
        );
        assert_eq!(get(&env, "TZ"), Some(OsStr::new("Europe/Paris")));
        assert_eq!(env.iter().filter(|(k, _)| k == "TZ").count(), 1);
        assert_eq!(get(&env, "PYTHONPATH"), Some(OsStr::new("/srv/fn")));
        let ld = get(&env, "LD_LIBRARY_PATH")
            .and_then(OsStr::to_str)
            .unwrap_or_default();
        assert!(ld.contains(":/srv/fn:/srv/fn/lib:"), "{ld}");
    }

    #[test]
    fn extensions_get_the_documented_subset() {
        let env = runtime_env(&config(), SocketAddr::from(([127, 0, 0, 1], 9001)), "s");
        let ext = extension_env(&env);
        assert_eq!(get(&ext, "_HANDLER"), None);
        assert_eq!(get(&ext, "AWS_LAMBDA_LOG_STREAM_NAME"), None);
        assert_eq!(get(&ext, "AWS_EXECUTION_ENV"), None);
        assert!(get(&ext, "AWS_LAMBDA_RUNTIME_API").is_some());
        assert!(get(&ext, "AWS_LAMBDA_FUNCTION_NAME").is_some());
        assert_eq!(get(&ext, "MY_SETTING"), Some(OsStr::new("1")));
    }
}
