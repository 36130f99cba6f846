//! `template.yaml` deploys the table the code expects: one definition, checked here, so the two
//! cannot drift apart.

use std::collections::BTreeSet;

use opengpts::store::dynamodb::TABLE;
use serde_yaml::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("valid YAML")
}

fn key_schema(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_sequence()
        .expect("a key schema list")
        .iter()
        .map(|key| (key["AttributeName"].as_str().unwrap().to_string(), key["KeyType"].as_str().unwrap().to_string()))
        .collect()
}

fn hash_range(pk: &str, sk: &str) -> Vec<(String, String)> {
    vec![(pk.to_string(), "HASH".to_string()), (sk.to_string(), "RANGE".to_string())]
}

#[test]
fn the_template_table_is_the_table_the_code_uses() {
    let template = template();
    let table = &template["Resources"]["Table"]["Properties"];
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(key_schema(&table["KeySchema"]), hash_range(TABLE.partition_key, TABLE.sort_key));

    let indexes = table["GlobalSecondaryIndexes"].as_sequence().expect("indexes");
    assert_eq!(indexes.len(), TABLE.indexes.len());
    for (name, pk, sk) in TABLE.indexes {
        let index = indexes.iter().find(|index| index["IndexName"].as_str() == Some(name)).expect("the index");
        assert_eq!(key_schema(&index["KeySchema"]), hash_range(pk, sk), "{name}");
        assert_eq!(index["Projection"]["ProjectionType"].as_str(), Some("ALL"), "{name}");
    }

    let defined: BTreeSet<(String, String)> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| (a["AttributeName"].as_str().unwrap().to_string(), a["AttributeType"].as_str().unwrap().to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [TABLE.partition_key, TABLE.sort_key]
        .into_iter()
        .chain(TABLE.indexes.iter().flat_map(|(_, pk, sk)| [*pk, *sk]))
        .map(|name| (name.to_string(), "S".to_string()))
        .collect();
    assert_eq!(defined, expected);
}

#[test]
fn the_localstack_hook_creates_the_same_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../localstack/init/create-table.sh");
    let script = std::fs::read_to_string(path).expect("the LocalStack init hook");
    for name in
        [TABLE.partition_key, TABLE.sort_key].into_iter().chain(TABLE.indexes.iter().flat_map(|(_, pk, sk)| [*pk, *sk]))
    {
        assert!(script.contains(&format!("AttributeName={name},AttributeType=S")), "{name} is not defined");
    }
    assert!(script.contains(&format!(
        "AttributeName={},KeyType=HASH AttributeName={},KeyType=RANGE",
        TABLE.partition_key, TABLE.sort_key
    )));
    for (index, pk, sk) in TABLE.indexes {
        let keys = format!(
            r#""IndexName":"{index}","KeySchema":[{{"AttributeName":"{pk}","KeyType":"HASH"}},{{"AttributeName":"{sk}","KeyType":"RANGE"}}],"Projection":{{"ProjectionType":"ALL"}}"#
        );
        assert!(script.contains(&keys), "{index} differs");
    }
}
