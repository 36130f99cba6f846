//! Every integration test, as modules of one binary: the AWS SDK and the app are linked once.
//!
//! Suites that need a service started by `make test` say so when it is missing:
//! `DYNAMODB_TEST_ENDPOINT` (the DynamoDB emulator) and `LAMBDA_EMULATOR_URL` (`cargo lambda
//! watch`). The test command runs them with the services up; name a module to run one suite
//! (`cargo test -p integration-tests -- runs_stream::`).

mod agent_protocols;
mod agents;
mod api;
mod bot_forms;
mod connections;
mod crash;
mod crons;
mod docs;
mod dynamodb_concurrency;
mod dynamodb_requests;
mod faults;
mod frontends;
mod fuzz;
mod hostile_files;
mod isolation;
mod jwt;
mod lambda_emulator;
mod lambda_events;
mod langgraph;
mod langgraph_events;
mod mcp_tools;
mod providers;
mod retrieval;
mod routes;
mod runs_stream;
mod store_contract;
mod template;
mod tools;
mod uploads;
mod walkthrough;
