//! SOQL `query`/`queryAll` with paging by locator.

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
}

pub(super) fn soql_error(e: soql::SoqlError) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, e.code, e.message, &[])
}

pub(in crate::mock) fn run_query(
    org: &Org,
    text: &str,
    all: bool,
    now: Timestamp,
    v: &str,
) -> Result<Ran, Answer> {
    let mut q = soql::parse(text).map_err(soql_error)?;
    let Some(object) = org.object_name(&q.object).map(str::to_string) else {
        return Err(Answer::error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            format!("\n{text}\nsObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", q.object),
            &[],
        ));
    };
    if let Select::Fields(fields) = &mut q.select {
        for f in fields.iter_mut() {
            *f = org.check_path(&object, f).map_err(soql_error)?;
        }
    }
    if let Some(filter) = &mut q.filter {
        for f in filter.fields_mut() {
            *f = org.check_path(&object, f).map_err(soql_error)?;
        }
    }
    for o in &mut q.order {
        o.field = org.check_path(&object, &o.field).map_err(soql_error)?;
    }
    // An equality on the external ID (anywhere in a chain of ANDs) reads the index; the
    // whole filter still runs on what it finds.
    let ext_field = org.bundle().objects[&object].external_id.clone();
    let source: Vec<&Record> = match q.filter.as_ref().and_then(|f| indexed_value(f, &ext_field)) {
        Some(v) => org.ext_candidates(&object, v, all),
        None if all => org.all_records(&object).collect(),
        None => org.records(&object).collect(),
    };
    let get = |r: &Record, p: &FieldPath| org.path_value(&object, Some(r), &r.fields, p);
    let mut matched: Vec<&Record> = match &q.filter {
        None => source,
        Some(f) => source
            .into_iter()
            .filter(|r| soql::eval(f, now, &|p: &FieldPath| get(r, p)))
            .collect(),
    };
    if !q.order.is_empty() {
        matched.sort_by(|a, b| {
            for o in &q.order {
                let (x, y) = (get(a, &o.field), get(b, &o.field));
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
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(usize::MAX);
    let rows = matched.into_iter().skip(offset).take(limit);
    let Select::Fields(fields) = &q.select else {
        return Ok(Ran::Count(rows.count()));
    };
    let rows = rows
        .map(|r| {
            let mut out = Map::new();
            out.insert("attributes".into(), attributes(&object, &r.id, v));
            for f in fields {
                match f.parts.as_slice() {
                    [one] => {
                        out.insert(one.clone(), get(r, f));
                    }
                    [rel, ..] => {
                        let parent_id = parent_of(org, &object, r, rel);
                        let entry = out.entry(rel.clone()).or_insert_with(|| match &parent_id {
                            Some((p, id)) => {
                                let mut m = Map::new();
                                m.insert("attributes".into(), attributes(p, id, v));
                                Value::Object(m)
                            }
                            None => Value::Null,
                        });
                        if let Value::Object(m) = entry {
                            m.insert(f.parts[1..].join("."), get(r, f));
                        }
                    }
                    [] => {}
                }
            }
            Value::Object(out)
        })
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
