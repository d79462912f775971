//! Tests of `parser`.

use super::*;

#[test]
fn parses_the_subset() {
    let q = parse("SELECT Id, Name, Account.Name FROM Contact WHERE (Name LIKE 'A%' OR Name = null) AND NOT Amount__c > 3 ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5").unwrap();
    assert_eq!(q.object, "Contact");
    assert_eq!(q.limit, Some(10));
    assert_eq!(q.offset, Some(5));
    assert_eq!(q.order.len(), 2);
    assert!(q.order[0].descending && q.order[0].nulls_last);
    let Item::Field { path, alias: None } = &q.items()[2] else {
        panic!("a field: {q:?}")
    };
    assert_eq!(path.parts, vec!["Account", "Name"]);
    assert_eq!(path.column, 18);
    assert_eq!(
        parse("select count() from Account").unwrap().select,
        Select::Count
    );
}

#[test]
fn parses_aggregates_groups_and_child_subqueries() {
    let q = parse("SELECT Industry, COUNT(Id) n, sum(AnnualRevenue) FROM Account WHERE Name != null GROUP BY Industry HAVING COUNT(Id) > 1 AND Industry != null ORDER BY COUNT(Id) DESC, Industry LIMIT 3").unwrap();
    assert!(q.is_aggregate());
    assert_eq!(q.group_by.len(), 1);
    let Item::Aggregate { agg, alias } = &q.items()[2] else {
        panic!("an aggregate: {q:?}")
    };
    assert_eq!((agg.func, agg.column, alias), (Func::Sum, 31, &None));
    assert_eq!(q.having.as_ref().map(|h| h.operands().len()), Some(2));
    assert!(matches!(&q.order[0].by, Operand::Aggregate(a) if a.func == Func::Count));
    assert_eq!(
        column_names(q.items()),
        vec![
            Some("Industry".into()),
            Some("n".into()),
            Some("expr0".into())
        ]
    );
    let q = parse("SELECT Name, (SELECT LastName, Account.Name FROM Contacts WHERE LastName LIKE 'A%' ORDER BY LastName LIMIT 2), Id FROM Account").unwrap();
    assert!(!q.is_aggregate());
    let Item::Child(sub) = &q.items()[1] else {
        panic!("a subquery: {q:?}")
    };
    assert_eq!((sub.object.as_str(), sub.limit), ("Contacts", Some(2)));
    assert_eq!(q.items().len(), 3);
    // Without GROUP BY, one aggregate makes an aggregate query.
    assert!(parse("SELECT MAX(CreatedDate) latest FROM Account")
        .unwrap()
        .is_aggregate());
}

#[test]
fn aggregate_and_subquery_rules_are_enforced() {
    for (bad, says) in [
        (
            "SELECT Name, COUNT(Id) FROM Account",
            "Field must be grouped or aggregated: Name",
        ),
        (
            "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry ORDER BY Name",
            "Ordered field must be grouped or aggregated: Name",
        ),
        (
            "SELECT Name, COUNT(Id) FROM Account GROUP BY Name HAVING Industry = 'x'",
            "Having field must be grouped or aggregated: Industry",
        ),
        (
            "SELECT COUNT(Id) FROM Account GROUP BY id",
            "Grouped field should not be aggregated: Id",
        ),
        (
            "SELECT COUNT() FROM Account GROUP BY Name",
            "COUNT() cannot be used with GROUP BY",
        ),
        (
            "SELECT COUNT(), Name FROM Account",
            "must be the only element",
        ),
        (
            "SELECT Name, COUNT() FROM Account",
            "must be the only element",
        ),
        (
            "SELECT Name n FROM Account",
            "only aggregate queries give aliases",
        ),
        (
            "SELECT COUNT(Id) a, SUM(Amount) A FROM Account",
            "duplicate alias: A",
        ),
        (
            "SELECT Name FROM Account HAVING Name = 'x'",
            "HAVING needs GROUP BY",
        ),
        (
            "SELECT Name FROM Account ORDER BY COUNT(Id)",
            "needs an aggregate query",
        ),
        (
            "SELECT Name, (SELECT COUNT(Id) FROM Contacts) FROM Account",
            "cannot aggregate",
        ),
        (
            "SELECT Name, (SELECT Id, (SELECT Id FROM Cases) FROM Contacts) FROM Account",
            "one level of child subqueries",
        ),
        (
            "SELECT Name, (SELECT Id FROM Contacts FROM Account",
            "expecting ')' to close the subquery",
        ),
        (
            "SELECT COUNT(Id), (SELECT Id FROM Contacts) FROM Account",
            "cannot be used in an aggregate query",
        ),
        (
            "SELECT FORMAT(Amount) FROM Account",
            "unknown function FORMAT",
        ),
        ("SELECT SUM(Amount FROM Account", "expecting ')'"),
        (
            "SELECT Id FROM Account WHERE COUNT(Id) > 1",
            "expecting a comparison operator",
        ),
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.code, "MALFORMED_QUERY", "{bad}");
        assert!(e.message.contains(says), "{bad}: {}", e.message);
    }
    // Deep nesting is refused, not recursed into: in HAVING, and in subqueries.
    let deep = format!(
        "SELECT Name, COUNT(Id) FROM Account GROUP BY Name HAVING {}COUNT(Id) > 1{}",
        "(".repeat(3000),
        ")".repeat(3000)
    );
    assert!(parse(&deep).unwrap_err().message.contains("levels deep"));
    let nested = format!("SELECT Id, {}", "(SELECT Id, ".repeat(3000));
    assert!(parse(&nested).unwrap_err().message.contains("one level"));
}

#[test]
fn malformed_queries_say_where() {
    for bad in [
        "SELECT FROM Account",
        "SELECT Id Account",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account WHERE Name = 'x",
        "SELECT Id FROM Account LIMIT many",
        "SELECT Id FROM Account WHERE Name ~ 'x'",
        "SELECT Id FROM Account extra",
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.code, "MALFORMED_QUERY", "{bad}");
    }
    let e = parse("SELECT Id FROM Account WHERE Name = = 1").unwrap_err();
    assert!(e.message.contains("column 37"), "{}", e.message);
}
