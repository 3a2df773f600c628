//! An L402 reverse proxy: put a Lightning paywall in front of any HTTP or gRPC API.

pub mod config;
