//! SOQL `query`/`queryAll` with paging by locator: plain queries (parent fields, child
//! subqueries), `COUNT()`, and aggregate queries answered as `AggregateResult` rows.

use super::*;

/// `GET query?q=…`, `GET queryAll?q=…` and `GET query/{locator}`.
pub(in crate::mock) fn query(state: &mut State, req: &Req<'_>, seg: &[&str]) -> Answer {
    if req.method != Method::GET {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{}' not allowed. Allowed are GET", req.method),
            &[],
        );
    }
    let all = seg
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("queryAll"));
    match seg {
        [_] => {
            let Some(q) = req.param("q") else {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_QUERY",
                    "A query string has to be specified",
                    &[],
                );
            };
            let batch = req
                .header("sforce-query-options")
                .and_then(|v| {
                    v.split(',')
                        .find_map(|kv| kv.trim().strip_prefix("batchSize="))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                })
                .map(|n| n.clamp(200, QUERY_PAGE))
                .unwrap_or(QUERY_PAGE);
            match run_query(&state.org, q, all, req.now, req.api_version) {
                Err(a) => a,
                Ok(Ran::Count(n)) => Answer::ok(
                    StatusCode::OK,
                    json!({"totalSize": n, "done": true, "records": []}),
                ),
                Ok(Ran::Aggregates(rows)) => Answer::ok(
                    StatusCode::OK,
                    json!({"totalSize": rows.len(), "done": true, "records": rows}),
                ),
                Ok(Ran::Rows(rows)) => {
                    state.next_cursor += 1;
                    let locator = ids::numbered("01g", state.next_cursor);
                    let answer = page(&rows, 0, batch, &locator, all, req.api_version);
                    if rows.len() > batch {
                        state.cursors.insert(
                            locator,
                            Cursor {
                                records: rows,
                                batch,
                                all,
                            },
                        );
                    }
                    answer
                }
            }
        }
        [_, locator] => {
            let (id, offset) = match locator.rsplit_once('-') {
                Some((id, n)) => (id, n.parse::<usize>().ok()),
                None => (*locator, None),
            };
            let Some(offset) = offset else {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_QUERY_LOCATOR",
                    "invalid query locator",
                    &[],
                );
            };
            match state.cursors.get(id) {
                Some(c) if offset < c.records.len() => {
                    page(&c.records, offset, c.batch, id, c.all, req.api_version)
                }
                _ => Answer::error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_QUERY_LOCATOR",
                    "invalid query locator",
                    &[],
                ),
            }
        }
        _ => Answer::not_found(),
    }
}

pub(super) fn page(
    rows: &[Value],
    offset: usize,
    batch: usize,
    locator: &str,
    all: bool,
    v: &str,
) -> Answer {
    let end = (offset + batch).min(rows.len());
    let done = end >= rows.len();
    let mut body = json!({"totalSize": rows.len(), "done": done, "records": &rows[offset..end]});
    if !done {
        let resource = if all { "queryAll" } else { "query" };
        body["nextRecordsUrl"] = json!(format!("/services/data/v{v}/{resource}/{locator}-{end}"));
    }
    Answer::ok(StatusCode::OK, body)
}

pub(in crate::mock) enum Ran {
    Count(usize),
    Rows(Vec<Value>),
    /// `AggregateResult` rows: answered in one page, without a locator, as Salesforce
    /// answers `GROUP BY` queries.
    Aggregates(Vec<Value>),
}

pub(super) fn soql_error(e: soql::SoqlError) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, e.code, e.message, &[])
}

fn invalid_field(column: usize, message: String) -> Answer {
    Answer::error(
        StatusCode::BAD_REQUEST,
        "INVALID_FIELD",
        format!("\nERROR at Row:1:Column:{column}\n{message}"),
        &[],
    )
}

/// The bundle's name of the object a query or search names, or `INVALID_TYPE`.
pub(super) fn query_object(org: &Org, name: &str, text: &str) -> Result<String, Answer> {
    org.object_name(name).map(str::to_string).ok_or_else(|| {
        Answer::error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            format!("\n{text}\nsObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."),
            &[],
        )
    })
}

/// The describe type of a checked field path (`Account.Industry` → `picklist`).
fn path_type(org: &Org, object: &str, path: &FieldPath) -> &'static str {
    let mut current = object.to_string();
    for (i, part) in path.parts.iter().enumerate() {
        let Some(spec) = org.bundle().object(&current) else {
            break;
        };
        if i + 1 == path.parts.len() {
            return match part.as_str() {
                "Id" => "id",
                "IsDeleted" => "boolean",
                "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => "datetime",
                "CreatedById" | "LastModifiedById" => "reference",
                f => spec
                    .fields
                    .get(f)
                    .map(|s| s.ty.describe_name())
                    .unwrap_or("string"),
            };
        }
        match spec
            .fields
            .values()
            .find(|f| f.relationship.as_deref() == Some(part.as_str()))
            .and_then(|f| f.to.clone())
        {
            Some(parent) => current = parent,
            None => break,
        }
    }
    "string"
}

/// Checks an aggregate's field type: `SUM`/`AVG` need numbers, `MIN`/`MAX` an ordered
/// type; otherwise `INVALID_FIELD` as Salesforce says it.
fn check_aggregate(org: &Org, object: &str, a: &soql::Aggregate) -> Result<(), Answer> {
    let ty = path_type(org, object, &a.field);
    let fits = match a.func {
        Func::Count => true,
        Func::CountDistinct => ty != "textarea",
        Func::Sum | Func::Avg => matches!(ty, "int" | "double" | "currency" | "percent"),
        Func::Min | Func::Max => !matches!(ty, "boolean" | "textarea"),
    };
    if fits {
        Ok(())
    } else {
        Err(invalid_field(
            a.field.column,
            format!(
                "field {} does not support aggregate operator {}",
                a.field.dotted(),
                a.func.name()
            ),
        ))
    }
}

/// A child relationship of `parent` by name, any case: (child object, its lookup field,
/// the relationship's name), as describe's `childRelationships` lists it.
fn child_relationship(org: &Org, parent: &str, name: &str) -> Option<(String, String, String)> {
    org.bundle().objects.iter().find_map(|(child, spec)| {
        let rel = relationship_name(child);
        if !rel.eq_ignore_ascii_case(name) {
            return None;
        }
        spec.fields
            .iter()
            .find(|(_, f)| f.to.as_deref() == Some(parent))
            .map(|(fk, _)| (child.clone(), fk.clone(), rel.clone()))
    })
}

/// Canonicalises every field path of `q` on `object` (`INVALID_FIELD` for an unknown one),
/// checks aggregate and grouped field types, and resolves child subqueries
/// (`INVALID_TYPE` for an unknown relationship).
fn check_query(org: &Org, object: &str, q: &mut Query, text: &str) -> Result<(), Answer> {
    let path = |f: &FieldPath| org.check_path(object, f).map_err(soql_error);
    if let Select::Items(items) = &mut q.select {
        for item in items.iter_mut() {
            match item {
                Item::Field { path: f, .. } => *f = path(f)?,
                Item::Aggregate { agg, .. } => {
                    agg.field = path(&agg.field)?;
                    check_aggregate(org, object, agg)?;
                }
                Item::Child(sub) => {
                    let Some((child, _, _)) = child_relationship(org, object, &sub.object) else {
                        return Err(Answer::error(
                            StatusCode::BAD_REQUEST,
                            "INVALID_TYPE",
                            format!("\n{text}\nDidn't understand relationship '{}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.", sub.object),
                            &[],
                        ));
                    };
                    check_query(org, &child, sub, text)?;
                }
            }
        }
    }
    if let Some(filter) = &mut q.filter {
        for f in filter.fields_mut() {
            *f = path(f)?;
        }
    }
    for g in &mut q.group_by {
        *g = path(g)?;
        let ty = path_type(org, object, g);
        if !groupable(ty) {
            return Err(invalid_field(
                g.column,
                format!("field '{}' can not be grouped in a query call", g.dotted()),
            ));
        }
    }
    let operands = q
        .having
        .iter_mut()
        .flat_map(|h| h.operands_mut())
        .chain(q.order.iter_mut().map(|o| &mut o.by));
    for operand in operands {
        let f = operand.field_mut();
        *f = path(f)?;
        if let Operand::Aggregate(a) = operand {
            check_aggregate(org, object, a)?;
        }
    }
    Ok(())
}

/// The records of `object` that `filter` keeps, in `order`, cut by `offset` and `limit`.
pub(super) fn select<'o>(
    org: &'o Org,
    object: &str,
    source: Vec<&'o Record>,
    filter: Option<&soql::Expr>,
    order: &[soql::OrderBy],
    (offset, limit): (Option<usize>, Option<usize>),
    now: Timestamp,
) -> Vec<&'o Record> {
    let get = |r: &Record, p: &FieldPath| org.path_value(object, Some(r), &r.fields, p);
    let mut matched: Vec<&Record> = match filter {
        None => source,
        Some(f) => source
            .into_iter()
            .filter(|r| soql::eval(f, now, &|p: &FieldPath| get(r, p)))
            .collect(),
    };
    if !order.is_empty() {
        matched.sort_by(|a, b| {
            for o in order {
                let Operand::Field(field) = &o.by else {
                    continue;
                };
                let (x, y) = (get(a, field), get(b, field));
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) if o.nulls_last => std::cmp::Ordering::Greater,
                    (true, false) => std::cmp::Ordering::Less,
                    (false, true) if o.nulls_last => std::cmp::Ordering::Less,
                    (false, true) => std::cmp::Ordering::Greater,
                    (false, false) => {
                        let ord = soql::order_values(&x, &y);
                        if o.descending {
                            ord.reverse()
                        } else {
                            ord
                        }
                    }
                };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    matched
        .into_iter()
        .skip(offset.unwrap_or(0))
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}

/// The children of one child subquery, by parent ID.
pub(super) struct Children<'o, 'q> {
    name: String,
    object: String,
    sub: &'q Query,
    by_parent: HashMap<&'o str, Vec<&'o Record>>,
}

impl<'o, 'q> Children<'o, 'q> {
    /// Indexes the children of the (checked) subquery `sub` of `parent` by parent ID.
    fn index(org: &'o Org, parent: &str, sub: &'q Query, all: bool) -> Option<Self> {
        let (object, fk, name) = child_relationship(org, parent, &sub.object)?;
        let mut by_parent: HashMap<&'o str, Vec<&'o Record>> = HashMap::new();
        let records: Box<dyn Iterator<Item = &'o Record>> = if all {
            Box::new(org.all_records(&object))
        } else {
            Box::new(org.records(&object))
        };
        for r in records {
            if let Some(Value::String(pid)) = r.fields.get(&fk) {
                by_parent.entry(pid.as_str()).or_default().push(r);
            }
        }
        Some(Children {
            name,
            object,
            sub,
            by_parent,
        })
    }

    /// The nested query result of one parent: `null` without children, as Salesforce
    /// answers it.
    fn of(&self, org: &Org, parent_id: &str, now: Timestamp, v: &str) -> Value {
        let source = self.by_parent.get(parent_id).cloned().unwrap_or_default();
        let sub = self.sub;
        let rows = select(
            org,
            &self.object,
            source,
            sub.filter.as_ref(),
            &sub.order,
            (sub.offset, sub.limit),
            now,
        );
        if rows.is_empty() {
            return Value::Null;
        }
        let records: Vec<Value> = rows
            .iter()
            .map(|r| record_json(org, &self.object, r, sub.items(), &[], now, v))
            .collect();
        json!({"totalSize": records.len(), "done": true, "records": records})
    }
}

/// One record as a query answers it: `attributes`, the selected fields (parent fields
/// nested under their relationship) and each child subquery's result.
pub(super) fn record_json(
    org: &Org,
    object: &str,
    r: &Record,
    items: &[Item],
    children: &[Option<Children<'_, '_>>],
    now: Timestamp,
    v: &str,
) -> Value {
    let get = |p: &FieldPath| org.path_value(object, Some(r), &r.fields, p);
    let mut out = Map::new();
    out.insert("attributes".into(), attributes(object, &r.id, v));
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Field { path: f, .. } => match f.parts.as_slice() {
                [one] => {
                    out.insert(one.clone(), get(f));
                }
                [rel, ..] => {
                    let parent_id = parent_of(org, object, r, rel);
                    let entry = out.entry(rel.clone()).or_insert_with(|| match &parent_id {
                        Some((p, id)) => {
                            let mut m = Map::new();
                            m.insert("attributes".into(), attributes(p, id, v));
                            Value::Object(m)
                        }
                        None => Value::Null,
                    });
                    if let Value::Object(m) = entry {
                        m.insert(f.parts[1..].join("."), get(f));
                    }
                }
                [] => {}
            },
            Item::Child(_) => {
                if let Some(Some(c)) = children.get(i) {
                    out.insert(c.name.clone(), c.of(org, &r.id, now, v));
                }
            }
            Item::Aggregate { .. } => {}
        }
    }
    Value::Object(out)
}

pub(in crate::mock) fn run_query(
    org: &Org,
    text: &str,
    all: bool,
    now: Timestamp,
    v: &str,
) -> Result<Ran, Answer> {
    let mut q = soql::parse(text).map_err(soql_error)?;
    let object = query_object(org, &q.object, text)?;
    check_query(org, &object, &mut q, text)?;
    // An equality on the external ID (anywhere in a chain of ANDs) reads the index; the
    // whole filter still runs on what it finds.
    let ext_field = org.bundle().objects[&object].external_id.clone();
    let source: Vec<&Record> = match q.filter.as_ref().and_then(|f| indexed_value(f, &ext_field)) {
        Some(v) => org.ext_candidates(&object, v, all),
        None if all => org.all_records(&object).collect(),
        None => org.records(&object).collect(),
    };
    if q.is_aggregate() {
        let kept = select(
            org,
            &object,
            source,
            q.filter.as_ref(),
            &[],
            (None, None),
            now,
        );
        let get = |r: &Record, p: &FieldPath| org.path_value(&object, Some(r), &r.fields, p);
        return Ok(Ran::Aggregates(soql::aggregate(&q, kept, now, &get)));
    }
    let rows = select(
        org,
        &object,
        source,
        q.filter.as_ref(),
        &q.order,
        (q.offset, q.limit),
        now,
    );
    let Select::Items(items) = &q.select else {
        return Ok(Ran::Count(rows.len()));
    };
    let children: Vec<Option<Children<'_, '_>>> = items
        .iter()
        .map(|item| match item {
            Item::Child(sub) => Children::index(org, &object, sub, all),
            _ => None,
        })
        .collect();
    let rows = rows
        .iter()
        .map(|r| record_json(org, &object, r, items, &children, now, v))
        .collect();
    Ok(Ran::Rows(rows))
}

/// The value of an `ext_field = 'value'` term that every match must satisfy.
pub(super) fn indexed_value<'e>(e: &'e soql::Expr, ext_field: &str) -> Option<&'e str> {
    match e {
        soql::Expr::Cmp(f, soql::Op::Eq, soql::Literal::Text(v))
            if f.parts.len() == 1 && f.parts[0] == ext_field =>
        {
            Some(v)
        }
        soql::Expr::And(a, b) => {
            indexed_value(a, ext_field).or_else(|| indexed_value(b, ext_field))
        }
        _ => None,
    }
}

pub(super) fn parent_of(
    org: &Org,
    object: &str,
    r: &Record,
    rel: &str,
) -> Option<(String, String)> {
    let spec = org.bundle().object(object)?;
    let (fk, parent) =
        spec.fields
            .iter()
            .find_map(|(n, f)| match (f.relationship.as_deref(), &f.to) {
                (Some(x), Some(p)) if x == rel => Some((n.clone(), p.clone())),
                _ => None,
            })?;
    let id = r.fields.get(&fk)?.as_str()?.to_string();
    Some((parent, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_link_to_the_next_offset() {
        let rows: Vec<Value> = (0..5).map(|i| json!({"n": i})).collect();
        let a = page(&rows, 0, 2, "01gX", false, "62.0").json();
        assert_eq!(a["nextRecordsUrl"], "/services/data/v62.0/query/01gX-2");
        assert_eq!(a["done"], false);
        let last = page(&rows, 4, 2, "01gX", false, "62.0").json();
        assert_eq!(last["done"], true);
        assert!(last.get("nextRecordsUrl").is_none());
        assert_eq!(last["records"], json!([{"n": 4}]));
    }
}
