//! `pyrometer-extension`: the AWS Lambda external extension (the lifecycle loop lands with its issue).

fn main() {}
