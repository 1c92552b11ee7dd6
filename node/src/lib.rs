//! The `commonrock` node: configuration, start-up wiring, the HTTP API on warp, metrics and
//! the OpenAPI document. Thin by design: it parses, authenticates, asks an actor, renders.

pub mod api;
pub mod config;
pub mod dev;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod seed;
pub mod server;
