//! Executes background runs handed over by the `runs` function (asynchronous Lambda invokes).

#[tokio::main]
async fn main() -> Result<(), opengpts::serve::Error> {
    opengpts::serve::run_worker().await
}
