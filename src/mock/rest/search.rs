//! SOSL: `GET search?q=FIND {…} …` and `parameterizedSearch` (`GET` with `q`, `in`,
//! `sobject`, `{Object}.fields`, `{Object}.where`, `{Object}.limit`, `fields`,
//! `defaultLimit`, `overallLimit`, or `POST` with the same as JSON), answered as
//! `{"searchRecords": […]}`: each live record whose searched text fields match the term,
//! with `attributes` and the fields asked for (`Id` when none), objects in the order asked.

use super::query::{query_object, record_json, select, soql_error};
use super::*;
use crate::contract::soql::{parse_search, parse_term, Scope, Search, SearchObject};
use crate::contract::FieldType;

/// Records in one answer unless `LIMIT` or `overallLimit` asks for fewer (Salesforce: 2,000).
pub const SEARCH_LIMIT: usize = 2000;

fn malformed_search(message: impl Into<String>) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, "MALFORMED_SEARCH", message, &[])
}

/// A condition or field list that does not parse is a malformed search here.
fn search_error(e: soql::SoqlError) -> Answer {
    if e.code == "MALFORMED_QUERY" {
        malformed_search(e.message)
    } else {
        soql_error(e)
    }
}

/// `GET search?q=FIND {term} …`.
pub(super) fn search(state: &State, req: &Req<'_>) -> Answer {
    let Some(text) = req.param("q") else {
        return malformed_search("A search string has to be specified as q, e.g. q=FIND {Acme}");
    };
    match parse_search(text) {
        Ok(s) => run(&state.org, s, text, req.now, req.api_version),
        Err(e) => soql_error(e),
    }
}

/// `GET parameterizedSearch?q=term&sobject=…` or `POST parameterizedSearch` with JSON.
pub(super) fn parameterized_search(state: &State, req: &Req<'_>) -> Answer {
    let built = if req.method == Method::POST {
        from_json(&state.org, req.body)
    } else {
        from_params(&state.org, req)
    };
    match built {
        Ok((s, text)) => run(&state.org, s, &text, req.now, req.api_version),
        Err(a) => a,
    }
}

/// `Id, Name, Account.Name` as field paths.
fn field_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<FieldPath> {
    names
        .into_iter()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| FieldPath {
            parts: n.split('.').map(str::to_string).collect(),
            column: 1,
        })
        .collect()
}

fn count(value: Option<&str>, key: &str) -> Result<Option<usize>, Answer> {
    value
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| malformed_search(format!("{key} must be a whole number, not {v:?}")))
        })
        .transpose()
}

fn scope(value: Option<&str>) -> Result<Scope, Answer> {
    match value {
        None => Ok(Scope::All),
        Some(s) => Scope::named(s).ok_or_else(|| {
            malformed_search(format!(
                "in={s} is not a search group: use ALL, NAME, EMAIL or PHONE"
            ))
        }),
    }
}

/// Every object of the org, for a search that names none.
fn every_object(org: &Org, fields: &[FieldPath], limit: Option<usize>) -> Vec<SearchObject> {
    org.bundle()
        .objects
        .keys()
        .map(|o| SearchObject {
            limit,
            ..SearchObject::new(o, fields.to_vec())
        })
        .collect()
}

fn from_params(org: &Org, req: &Req<'_>) -> Result<(Search, String), Answer> {
    let Some(text) = req.param("q") else {
        return Err(malformed_search(
            "parameterizedSearch needs the search term as q, e.g. q=Acme",
        ));
    };
    let term = parse_term(text).map_err(search_error)?;
    let default_fields = field_list(req.param("fields").unwrap_or("").split(','));
    let default_limit = count(req.param("defaultLimit"), "defaultLimit")?;
    let mut returning = Vec::new();
    for (_, object) in req.query.iter().filter(|(k, _)| k == "sobject") {
        let param = |key: &str| req.param(&format!("{object}.{key}"));
        let fields = match param("fields") {
            Some(list) => field_list(list.split(',')),
            None => default_fields.clone(),
        };
        let mut spec = SearchObject::new(object, fields);
        if let Some(w) = param("where") {
            spec.filter = Some(soql::parse_condition(w).map_err(search_error)?);
        }
        spec.limit = count(param("limit"), &format!("{object}.limit"))?.or(default_limit);
        returning.push(spec);
    }
    if returning.is_empty() {
        returning = every_object(org, &default_fields, default_limit);
    }
    let search = Search {
        term,
        scope: scope(req.param("in"))?,
        returning,
        limit: count(req.param("overallLimit"), "overallLimit")?,
    };
    Ok((search, text.to_string()))
}

fn from_json(org: &Org, body: &[u8]) -> Result<(Search, String), Answer> {
    let body = body_object(body)?;
    let text = |v: Option<&Value>, key: &str| -> Result<Option<String>, Answer> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(malformed_search(format!(
                "{key} must be a string, not {other}"
            ))),
        }
    };
    let number = |v: Option<&Value>, key: &str| -> Result<Option<usize>, Answer> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| malformed_search(format!("{key} must be a whole number, not {n}"))),
        }
    };
    let names = |v: Option<&Value>, key: &str| -> Result<Vec<FieldPath>, Answer> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => {
                let names: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                names
                    .map(field_list)
                    .ok_or_else(|| malformed_search(format!("{key} must list field names")))
            }
            Some(other) => Err(malformed_search(format!(
                "{key} must be an array of field names, not {other}"
            ))),
        }
    };
    let Some(q) = text(body.get("q"), "q")? else {
        return Err(malformed_search(
            "parameterizedSearch needs the search term as \"q\"",
        ));
    };
    let term = parse_term(&q).map_err(search_error)?;
    let default_fields = names(body.get("fields"), "fields")?;
    let default_limit = number(body.get("defaultLimit"), "defaultLimit")?;
    let mut returning = Vec::new();
    let sobjects = match body.get("sobjects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(malformed_search(format!(
                "sobjects must be an array of {{\"name\": …}} objects, not {other}"
            )))
        }
    };
    for (i, o) in sobjects.iter().enumerate() {
        let at = |key: &str| format!("sobjects[{i}].{key}");
        let Some(name) = text(o.get("name"), &at("name"))? else {
            return Err(malformed_search(format!("{} is required", at("name"))));
        };
        let fields = match o.get("fields") {
            None | Some(Value::Null) => default_fields.clone(),
            f => names(f, &at("fields"))?,
        };
        let mut spec = SearchObject::new(&name, fields);
        if let Some(w) = text(o.get("where"), &at("where"))? {
            spec.filter = Some(soql::parse_condition(&w).map_err(search_error)?);
        }
        spec.limit = number(o.get("limit"), &at("limit"))?.or(default_limit);
        returning.push(spec);
    }
    if returning.is_empty() {
        returning = every_object(org, &default_fields, default_limit);
    }
    let search = Search {
        term,
        scope: scope(text(body.get("in"), "in")?.as_deref())?,
        returning,
        limit: number(body.get("overallLimit"), "overallLimit")?,
    };
    Ok((search, q))
}

/// The fields of an object a search group looks in.
fn searched_fields(org: &Org, object: &str, scope: Scope) -> Vec<String> {
    let Some(spec) = org.bundle().object(object) else {
        return Vec::new();
    };
    spec.fields
        .iter()
        .filter(|(name, f)| match scope {
            Scope::All => f.ty.is_text(),
            Scope::Name => {
                f.ty.is_text() && matches!(name.as_str(), "Name" | "FirstName" | "LastName")
            }
            Scope::Email => f.ty == FieldType::Email,
            Scope::Phone => f.ty == FieldType::Phone,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn run(org: &Org, mut s: Search, text: &str, now: Timestamp, v: &str) -> Answer {
    if s.returning.is_empty() {
        s.returning = every_object(org, &[], None);
    }
    let overall = s.limit.unwrap_or(SEARCH_LIMIT).min(SEARCH_LIMIT);
    let mut found: Vec<Value> = Vec::new();
    for spec in &mut s.returning {
        let object = match query_object(org, &spec.object, text) {
            Ok(o) => o,
            Err(a) => return a,
        };
        if spec.fields.is_empty() {
            spec.fields = field_list(["Id"]);
        }
        let paths = spec
            .fields
            .iter_mut()
            .chain(spec.filter.iter_mut().flat_map(|f| f.fields_mut()))
            .chain(spec.order.iter_mut().map(|o| o.by.field_mut()));
        for p in paths {
            match org.check_path(&object, p) {
                Ok(checked) => *p = checked,
                Err(e) => return soql_error(e),
            }
        }
        let searched = searched_fields(org, &object, s.scope);
        let candidates: Vec<&Record> = org
            .records(&object)
            .filter(|r| {
                let values: Vec<&str> = searched
                    .iter()
                    .filter_map(|f| r.fields.get(f).and_then(Value::as_str))
                    .collect();
                s.term.matches(&values)
            })
            .collect();
        let rows = select(
            org,
            &object,
            candidates,
            spec.filter.as_ref(),
            &spec.order,
            (spec.offset, spec.limit),
            now,
        );
        let items: Vec<Item> = spec
            .fields
            .iter()
            .map(|f| Item::Field {
                path: f.clone(),
                alias: None,
            })
            .collect();
        for r in rows {
            if found.len() >= overall {
                break;
            }
            found.push(record_json(org, &object, r, &items, &[], now, v));
        }
    }
    Answer::ok(StatusCode::OK, json!({"searchRecords": found}))
}
