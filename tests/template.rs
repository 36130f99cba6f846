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

/// Evaluates the template's intrinsic functions for chosen parameters: enough of CloudFormation
/// (`!Ref`, `!Sub`, `!If`, `!Equals`, `!Not`, `!Or`, `!And`) to read what the functions get.
/// A resource's `!Ref` reads `<Name>`, as its physical id would stand there.
struct Evaluated<'a> {
    template: &'a Value,
    parameters: &'a [(&'a str, &'a str)],
}

impl Evaluated<'_> {
    fn reference(&self, name: &str) -> Option<String> {
        if name == "AWS::NoValue" {
            return None;
        }
        if let Some((_, value)) = self.parameters.iter().find(|(parameter, _)| *parameter == name) {
            return Some(value.to_string());
        }
        let parameter = &self.template["Parameters"][name];
        if !parameter.is_null() {
            return Some(match &parameter["Default"] {
                Value::String(text) => text.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            });
        }
        Some(format!("<{name}>"))
    }

    fn condition(&self, name: &str) -> bool {
        self.truth(&self.template["Conditions"][name])
    }

    fn truth(&self, value: &Value) -> bool {
        let Value::Tagged(tagged) = value else { panic!("not a condition: {value:?}") };
        let arguments = tagged.value.as_sequence();
        match tagged.tag.to_string().as_str() {
            "!Equals" => {
                let pair = arguments.unwrap();
                self.value(&pair[0]) == self.value(&pair[1])
            }
            "!Not" => !self.truth(&arguments.unwrap()[0]),
            "!Or" => arguments.unwrap().iter().any(|item| self.truth(item)),
            "!And" => arguments.unwrap().iter().all(|item| self.truth(item)),
            "!Condition" => self.condition(tagged.value.as_str().unwrap()),
            other => panic!("unsupported condition {other}"),
        }
    }

    fn value(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            Value::Tagged(tagged) => match tagged.tag.to_string().as_str() {
                "!Ref" => self.reference(tagged.value.as_str().unwrap()),
                "!Sub" => {
                    let mut text = tagged.value.as_str().unwrap().to_string();
                    while let Some(start) = text.find("${") {
                        let end = start + text[start..].find('}').unwrap();
                        let name = text[start + 2..end].to_string();
                        text.replace_range(start..=end, &self.reference(&name).unwrap());
                    }
                    Some(text)
                }
                "!If" => {
                    let branches = tagged.value.as_sequence().unwrap();
                    let chosen =
                        if self.condition(branches[0].as_str().unwrap()) { &branches[1] } else { &branches[2] };
                    self.value(chosen)
                }
                // A resource's attribute, known once deployed.
                "!GetAtt" => Some(format!("<{}>", tagged.value.as_str().unwrap())),
                other => panic!("unsupported function {other}"),
            },
            other => panic!("unsupported value {other:?}"),
        }
    }

    /// What every function's environment holds, from the template's Globals.
    fn environment(&self) -> Vec<(String, String)> {
        let variables = self.template["Globals"]["Function"]["Environment"]["Variables"].as_mapping().unwrap();
        variables
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().unwrap().to_string(), self.value(value)?)))
            .collect()
    }
}

/// The environment `template.yaml` gives every function, for these parameters.
pub fn deployed_environment(parameters: &[(&str, &str)]) -> Vec<(String, String)> {
    Evaluated { template: &template(), parameters }.environment()
}

/// Each `AuthType` gives the functions the configuration it names: the code reads the template's
/// environment into the authentication the operator chose.
#[test]
fn each_auth_type_reaches_the_functions_as_that_authentication() {
    use opengpts::config::{AuthConfig, Config};
    let template = template();
    let config_for = |parameters: &[(&str, &str)]| {
        let environment = Evaluated { template: &template, parameters }.environment();
        Config::from_lookup(|name| {
            environment
                .iter()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.clone())
                .filter(|v| !v.is_empty())
        })
        .expect("a valid configuration")
        .auth
    };
    match config_for(&[("AWS::Region", "eu-west-1")]) {
        AuthConfig::JwtOidc { jwt } => {
            assert_eq!(jwt.issuer, "https://cognito-idp.eu-west-1.amazonaws.com/<UserPool>", "the default: Cognito");
            assert_eq!(jwt.audiences, ["<UserPoolClient>"]);
        }
        other => panic!("{other:?}"),
    }
    let oidc = config_for(&[("AuthType", "jwt_oidc"), ("JwtIssuer", "https://id.example"), ("JwtAudience", "api,ui")]);
    assert!(
        matches!(&oidc, AuthConfig::JwtOidc { jwt } if jwt.issuer == "https://id.example" && jwt.audiences == ["api", "ui"]),
        "{oidc:?}"
    );
    let key = "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K";
    let local =
        config_for(&[("AuthType", "jwt_local"), ("JwtIssuer", "i"), ("JwtAudience", "a"), ("JwtDecodeKeyB64", key)]);
    assert!(matches!(&local, AuthConfig::JwtLocal { algorithm, .. } if algorithm == "RS256"), "{local:?}");
    let cookie =
        config_for(&[("AuthType", "cookie"), ("UnauthenticatedAcknowledged", "yes-anyone-can-act-as-any-user")]);
    assert_eq!(
        cookie,
        AuthConfig::Cookie { uuid_only: true, anonymous: None },
        "even the mock takes only unguessable ids, and never a caller without one"
    );

    // The mock needs its acknowledgement, and says what it is in the outputs.
    let rule = &template["Rules"]["CookieNeedsAcknowledgement"];
    assert!(serde_yaml::to_string(rule).unwrap().contains("yes-anyone-can-act-as-any-user"));
    assert_eq!(template["Outputs"]["AuthWarning"]["Condition"].as_str(), Some("UseCookie"));
}

/// Functions that run models (and so agents' tool loops) stop a run cleanly, between steps and
/// with an error event, before Lambda's timeout would kill them mid-step; and every function
/// that reads tools' keys (saving an agent checks them) can read the provider secret.
#[test]
fn functions_that_run_agents_stop_before_their_timeout() {
    let template = template();
    let global_timeout = template["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    for binary in ["runs", "runs-stream", "run-worker", "api", "assistants"] {
        let (name, function) = template["Resources"]
            .as_mapping()
            .unwrap()
            .iter()
            .find(|(_, resource)| resource["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
            .unwrap_or_else(|| panic!("no function builds {binary}"));
        let properties = &function["Properties"];
        let variables = &properties["Environment"]["Variables"];
        assert!(!variables["PROVIDER_SECRET_ARN"].is_null(), "{name:?} cannot read the provider secret");
        if binary == "assistants" {
            continue;
        }
        let timeout = properties["Timeout"].as_u64().unwrap_or(global_timeout);
        let limit =
            variables["RUN_TIME_LIMIT_SECONDS"].as_u64().unwrap_or_else(|| panic!("{name:?} has no run time limit"));
        assert!(limit + 5 <= timeout, "{name:?}: a {limit} s run limit leaves no room in a {timeout} s timeout");
    }
}

/// SAM builds each function in its `CodeUri` (`cargo lambda build --release --bin <Binary>` run
/// there). In the function's own folder Cargo resolves that package's features alone; from the
/// workspace's root it would give every function the parts of all.
#[test]
fn each_function_is_built_in_its_own_folder() {
    let template = template();
    let mut functions = BTreeSet::new();
    for (name, resource) in template["Resources"].as_mapping().expect("resources") {
        let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else { continue };
        let folder = format!("functions/{binary}");
        assert_eq!(resource["Properties"]["CodeUri"].as_str(), Some(folder.as_str()), "{name:?}");
        functions.insert(binary.to_string());
    }
    let folders: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .expect("functions/")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(functions, folders, "every function in functions/ is deployed, and built in its folder");
}
