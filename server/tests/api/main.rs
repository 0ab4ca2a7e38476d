//! Integration tests of the v1 API over real HTTP on port 0, each with its own temp data dir.

mod abuse;
mod cluster;
mod connect;
mod faults;
mod host;
mod messages;
mod numbers;
mod openapi;
mod pairing_code;
mod postgres;
mod process;
mod routes;
mod sim;
mod stream;
mod webhook_delivery;
mod webhook_endpoints;
mod webhooks;
mod whatsapp;
mod wire;
