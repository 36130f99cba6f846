//! Every store backend against the one contract (`support/contract.rs`).

mod memory {
    use std::sync::Arc;

    use opengpts::store::MemoryStore;

    integration_tests::store_contract!(async {
        Arc::new(MemoryStore::new()) as integration_tests::contract::SharedStore
    });
}

mod sqlite {
    use std::sync::Arc;

    use opengpts::store::SqliteStore;

    integration_tests::store_contract!(async {
        let path = integration_tests::temp_path("contract.sqlite3");
        Arc::new(SqliteStore::open(&path).expect("opens")) as integration_tests::contract::SharedStore
    });
}

mod dynamodb {
    use std::sync::Arc;

    integration_tests::store_contract!(async {
        Arc::new(integration_tests::dynamodb_store().await) as integration_tests::contract::SharedStore
    });
}
