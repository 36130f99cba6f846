"""What the DynamoDB emulator (tests/dynamodb-emulator.py) must do as DynamoDB does, where it
changes moto: a cancelled transaction leaves every item it names as it was, a successful one
applies them all, and a transaction sent again with its ClientRequestToken is not applied twice.

Usage: dynamodb-emulator-check.py ENDPOINT (the running emulator). Exits non-zero on a failure.
"""

import sys
import uuid

import boto3
from botocore.exceptions import ClientError


def main() -> None:
    db = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    table = f"emulator-check-{uuid.uuid4()}"
    db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                               {"AttributeName": "sk", "KeyType": "RANGE"}])

    def key(sk):
        return {"pk": {"S": "thread"}, "sk": {"S": sk}}

    def stored():
        items = db.query(TableName=table, KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": "thread"}})["Items"]
        return {item["sk"]["S"]: item.get("n", {}).get("N") for item in items}

    # Enough items that a copy of the table would show, and the ones the transactions name.
    for i in range(300):
        db.put_item(TableName=table, Item={**key(f"filler-{i:03}"), "n": {"N": str(i)}})
    db.put_item(TableName=table, Item={**key("head"), "n": {"N": "1"}})
    db.put_item(TableName=table, Item={**key("old"), "n": {"N": "7"}})
    before = stored()

    def transaction(revision, token=None):
        """Moves `head` from `revision` on, adds `new`, removes `old`: all or nothing."""
        request = {"TransactItems": [
            {"Update": {"TableName": table, "Key": key("head"), "UpdateExpression": "SET n = n + :one",
                        "ConditionExpression": "n = :revision",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":revision": {"N": str(revision)}}}},
            {"Put": {"TableName": table, "Item": {**key("new"), "n": {"N": "0"}}}},
            {"Delete": {"TableName": table, "Key": key("old")}},
        ]}
        if token:
            request["ClientRequestToken"] = token
        return db.transact_write_items(**request)

    failures = []

    def expect(condition, what):
        if not condition:
            failures.append(what)

    # The condition on `head` is checked first, so moto writes nothing before it fails: the last
    # item is the one that fails here, after the other two were written.
    reordered = [
        {"Put": {"TableName": table, "Item": {**key("new"), "n": {"N": "0"}}}},
        {"Delete": {"TableName": table, "Key": key("old")}},
        {"Update": {"TableName": table, "Key": key("filler-005"), "UpdateExpression": "SET n = :gone",
                    "ExpressionAttributeValues": {":gone": {"N": "-1"}}}},
        {"ConditionCheck": {"TableName": table, "Key": key("head"), "ConditionExpression": "n = :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}}}},
    ]
    try:
        db.transact_write_items(TransactItems=reordered)
        failures.append("a transaction whose condition fails was applied")
    except ClientError as error:
        expect(error.response["Error"]["Code"] == "TransactionCanceledException",
               f"a failed condition answered {error.response['Error']['Code']}")
    now = stored()
    expect(now == before, "a cancelled transaction left items written: "
           f"{ {k: (before.get(k), now.get(k)) for k in before.keys() | now.keys() if before.get(k) != now.get(k)} }")

    try:
        transaction(revision=5)
        failures.append("a stale revision was applied")
    except ClientError:
        pass
    expect(stored() == before, "a cancelled transaction changed what it named")

    token = str(uuid.uuid4())
    transaction(revision=1, token=token)
    after = stored()
    expect(after.get("head") == "2" and after.get("new") == "0" and "old" not in after,
           f"a successful transaction was not applied whole: head {after.get('head')}, "
           f"new {after.get('new')}, old {after.get('old')}")
    transaction(revision=1, token=token)
    expect(stored() == after, "a transaction sent again with its token was applied twice")
    try:
        db.transact_write_items(ClientRequestToken=token, TransactItems=[
            {"Put": {"TableName": table, "Item": {**key("other"), "n": {"N": "0"}}}}])
        failures.append("the same token with another request was applied")
    except ClientError as error:
        expect(error.response["Error"]["Code"] == "IdempotentParameterMismatchException",
               f"the same token with another request answered {error.response['Error']['Code']}")

    db.delete_table(TableName=table)
    for failure in failures:
        print(f"FAIL: {failure}")
    print(f"the DynamoDB emulator's transactions: {'ok' if not failures else f'{len(failures)} failed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
