//! OpenGPTs Serverless: everything that is not a `main()`.
//!
//! Layers, each depending only on the ones above it:
//! - [`config`]: everything read from the environment, in one place.
//! - [`model`]: the wire types, parsed once from JSON into values that are valid by construction.
//! - [`store`]: the one [`store::Store`] trait through which all data flows, and its backends.
//! - [`llm`]: the [`llm::ChatModel`] trait and the model providers.
//! - [`documents`]: uploaded files: parsed, chunked, embedded, searched.
//! - [`tools`]: the agents' tools and the services behind them.
//! - [`runs`]: the run engine behind `/runs` and `/runs/stream`.
//! - [`schedules`]: where crons fire from: EventBridge Scheduler, or a loop in this process.
//! - [`api`]: the HTTP routers, auth, and the one error type mapped to status codes.
//! - [`serve`]: process entry points: the local HTTP server, or a Lambda function.

pub mod api;
pub mod config;
pub mod documents;
pub mod llm;
pub mod model;
pub mod runs;
pub mod schedules;
pub mod serve;
pub mod store;
pub mod tools;
