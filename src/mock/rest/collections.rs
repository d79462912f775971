//! sObject Collections: create, update, delete, retrieve and upsert up to 200 records, with
//! per-record errors and `allOrNone`.

use super::*;

pub(super) fn item_error(e: &RecordError) -> Value {
    json!({"success": false, "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}]})
}

pub(super) fn rolled_back() -> RecordError {
    RecordError::new(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
        vec![],
    )
}

pub(super) fn collection_body(req: &Req<'_>) -> Result<(bool, Vec<Value>), Answer> {
    let body = body_object(req.body)?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return Err(bad_json("Expected a `records` array"));
    };
    if records.len() > COLLECTION_LIMIT {
        return Err(Answer::error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("Maximum number of records is {COLLECTION_LIMIT}"),
            &[],
        ));
    }
    Ok((all_or_none, records.clone()))
}

/// Runs `items` one by one; with `all_or_none`, one failure restores the org as it was and
/// every other item reports `ALL_OR_NONE_OPERATION_ROLLED_BACK`.
pub(super) fn run_items<T>(
    org: &mut Org,
    all_or_none: bool,
    items: Vec<T>,
    mut one: impl FnMut(&mut Org, T) -> Result<Value, RecordError>,
) -> (Vec<Value>, usize) {
    let snapshot = all_or_none.then(|| org.clone());
    let outcomes: Vec<Result<Value, RecordError>> =
        items.into_iter().map(|item| one(org, item)).collect();
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    if let (Some(snapshot), true) = (snapshot, failed > 0) {
        *org = snapshot;
        let results = outcomes
            .iter()
            .map(|o| match o {
                Ok(_) => item_error(&rolled_back()),
                Err(e) => item_error(e),
            })
            .collect();
        return (results, outcomes.len());
    }
    let results = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|e| item_error(&e)))
        .collect();
    (results, failed)
}

pub(super) fn collection_write(state: &mut State, req: &Req<'_>, update: bool) -> Answer {
    let (all_or_none, records) = match collection_body(req) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let n = records.len();
    let now = req.now;
    let (results, failed) = run_items(&mut state.org, all_or_none, records, |org, r| {
        let Value::Object(mut values) = r else {
            return Err(RecordError::new(
                "JSON_PARSER_ERROR",
                "Each record must be a JSON object",
                vec![],
            ));
        };
        let ty = values
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
            .and_then(|t| org.object_name(t))
            .map(str::to_string);
        if update {
            let Some(id) = values.remove("Id").or_else(|| values.remove("id")) else {
                return Err(RecordError::new(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    vec![],
                ));
            };
            let id = id.as_str().unwrap_or_default().to_string();
            let object = ty
                .or_else(|| org.object_of_id(&id).map(str::to_string))
                .ok_or_else(|| {
                    RecordError::new(
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("invalid cross reference id: {id}"),
                        vec![],
                    )
                })?;
            org.update(&object, &id, values, now)?;
            Ok(json!({"id": id, "success": true, "errors": []}))
        } else {
            let object = ty.ok_or_else(|| {
                RecordError::new(
                    "INVALID_TYPE",
                    "Each record needs attributes.type naming a known sObject",
                    vec![],
                )
            })?;
            let id = org.create(&object, values, now)?;
            Ok(json!({"id": id, "success": true, "errors": []}))
        }
    });
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(n);
    answer.outcome = Some((n - failed, failed));
    answer
}

pub(super) fn collection_delete(state: &mut State, req: &Req<'_>) -> Answer {
    let ids: Vec<String> = req
        .param("ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.len() > COLLECTION_LIMIT {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("Maximum number of records is {COLLECTION_LIMIT}"),
            &[],
        );
    }
    let all_or_none = req.param("allOrNone") == Some("true");
    let n = ids.len();
    let now = req.now;
    let (results, failed) = run_items(&mut state.org, all_or_none, ids, |org, id| {
        let object = org.object_of_id(&id).map(str::to_string).ok_or_else(|| {
            RecordError::new(
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {id}"),
                vec![],
            )
        })?;
        org.delete(&object, &id, now, false)?;
        Ok(json!({"id": id, "success": true, "errors": []}))
    });
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(n);
    answer.outcome = Some((n - failed, failed));
    answer
}

pub(super) fn collection_read(state: &State, req: &Req<'_>, object: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let spec = state.org.bundle().object(object);
    // `GET ?ids=&fields=`, or the POST form `{"ids": [...], "fields": [...]}` for long lists.
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    };
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v.and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
    };
    let (ids, fields) = if req.method == Method::POST {
        let body = match body_object(req.body) {
            Ok(b) => b,
            Err(a) => return a,
        };
        let Some(ids) = strings(body.get("ids")) else {
            return bad_json("Expected an `ids` array");
        };
        (ids, strings(body.get("fields")))
    } else {
        (
            split(req.param("ids").unwrap_or_default()),
            req.param("fields").map(split),
        )
    };
    if ids.len() > 2000 {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "Maximum number of ids is 2000",
            &[],
        );
    }
    let wanted: Option<Vec<String>> = fields.map(|f| f.iter().map(|x| x.to_lowercase()).collect());
    let records: Vec<Value> = ids
        .iter()
        .map(|id| match state.org.get(object, id) {
            Some(r) => {
                let mut v = r.to_json_with(object, req.api_version, spec);
                if let (Some(wanted), Value::Object(map)) = (&wanted, &mut v) {
                    map.retain(|k, _| k == "attributes" || wanted.contains(&k.to_lowercase()));
                }
                v
            }
            None => Value::Null,
        })
        .collect();
    Answer::ok(StatusCode::OK, Value::Array(records))
}

pub(super) fn upsert_collection(
    state: &mut State,
    req: &Req<'_>,
    object: &str,
    field: &str,
) -> Answer {
    let (all_or_none, records) = match collection_body(req) {
        Ok(b) => b,
        Err(a) => return a,
    };
    match state.org.bundle().object(object) {
        Some(spec) if spec.external_id == field => {}
        Some(_) => {
            return Answer::error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
                &[],
            )
        }
        None => return unknown_object(object),
    }
    let n = records.len();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &records {
        if let Some(ext) = r.get(field).and_then(Value::as_str) {
            *seen.entry(ext.to_string()).or_insert(0) += 1;
        }
    }
    let now = req.now;
    let (results, failed) = run_items(&mut state.org, all_or_none, records, |org, r| {
        let Value::Object(values) = r else {
            return Err(RecordError::new(
                "JSON_PARSER_ERROR",
                "Each record must be a JSON object",
                vec![],
            ));
        };
        let Some(ext) = values
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(RecordError::new(
                "MISSING_ARGUMENT",
                format!("{field} not specified"),
                vec![field.to_string()],
            ));
        };
        if seen.get(&ext).copied().unwrap_or(0) > 1 {
            return Err(RecordError::new(
                "DUPLICATE_EXTERNAL_ID",
                format!("Duplicate external id specified: {ext}"),
                vec![],
            ));
        }
        match org.prepare_upsert(object, field, &ext, values) {
            Ok(p) => {
                let done = org.apply(p, now);
                Ok(json!({"id": done.id, "success": true, "errors": [], "created": done.created}))
            }
            Err(UpsertError::Record(e)) => Err(e),
            Err(UpsertError::Ambiguous(_)) => Err(RecordError::new(
                "DUPLICATE_EXTERNAL_ID",
                format!("Foreign key external ID: {ext} matches more than one record"),
                vec![],
            )),
        }
    });
    // Counted for the journal: a duplicate create shows up as more creates than records.
    state.created_by_last = Some(
        results
            .iter()
            .filter(|r| r.get("created").and_then(Value::as_bool) == Some(true))
            .count(),
    );
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(n);
    answer.outcome = Some((n - failed, failed));
    answer
}
