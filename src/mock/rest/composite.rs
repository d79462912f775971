//! `composite`: up to 25 subrequests with `@{ref}` references and `allOrNone`.

use super::*;

/// Replaces `@{ref.path}` in `text` with values from earlier subrequest bodies; the first
/// reference that cannot be resolved is returned as the error.
pub(super) fn substitute(text: &str, bodies: &HashMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = &after[..end];
        let (name, path) = reference.split_once('.').unwrap_or((reference, ""));
        let mut v = bodies.get(name).ok_or_else(|| reference.to_string())?;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, index) = match part.split_once('[') {
                Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            v = v.get(key).ok_or_else(|| reference.to_string())?;
            if let Some(i) = index {
                v = v.get(i).ok_or_else(|| reference.to_string())?;
            }
        }
        match v {
            Value::String(s) => out.push_str(s),
            Value::Null => return Err(reference.to_string()),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn halted(message: &str) -> Value {
    json!([{"errorCode": "PROCESSING_HALTED", "message": message}])
}

/// The body of a `composite` or `composite/batch` request: its `flag` (`allOrNone`,
/// `haltOnError`; false when absent) and its `list` of at most [`COMPOSITE_LIMIT`]
/// subrequests.
fn subrequests(body: &[u8], flag: &str, list: &str) -> Result<(bool, Vec<Value>), Answer> {
    let mut body = body_object(body)?;
    let flag = body.get(flag).and_then(Value::as_bool).unwrap_or(false);
    let Some(Value::Array(subs)) = body.remove(list) else {
        return Err(bad_json(format!("Expected a `{list}` array")));
    };
    if subs.len() > COMPOSITE_LIMIT {
        return Err(Answer::error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            format!("Maximum number of subrequests is {COMPOSITE_LIMIT}"),
            &[],
        ));
    }
    Ok((flag, subs))
}

/// A subrequest's `method` and `url`, when it has both (and the method is one).
fn method_and_url(sub: &Value) -> Option<(Method, &str)> {
    let method = sub
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())?;
    Some((method, sub.get("url").and_then(Value::as_str)?))
}

pub(super) fn composite(state: &mut State, req: &Req<'_>) -> Answer {
    let (all_or_none, subs) = match subrequests(req.body, "allOrNone", "compositeRequest") {
        Ok(s) => s,
        Err(a) => return a,
    };
    let snapshot = all_or_none.then(|| state.org.clone());
    let mut bodies: HashMap<String, Value> = HashMap::new();
    let mut responses: Vec<Value> = Vec::new();
    let mut failed_at = None;
    for (i, sub) in subs.iter().enumerate() {
        let reference = sub
            .get("referenceId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let respond = |status: u16, body: Value| json!({"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": reference});
        let Some((method, url)) = method_and_url(sub) else {
            responses.push(respond(
                400,
                json!([{"errorCode": "INVALID_INPUT", "message": "Each subrequest needs a method and a url"}]),
            ));
            failed_at.get_or_insert(i);
            continue;
        };
        let url = match substitute(url, &bodies) {
            Ok(u) => u,
            Err(r) => {
                responses.push(respond(400, halted(&format!("Invalid reference specified. No value for {r} found in {reference}. Provided referenceId ({reference}) must start with a letter and contain only alphanumeric or underscore characters."))));
                failed_at.get_or_insert(i);
                continue;
            }
        };
        let sub_body = match sub.get("body") {
            None => String::new(),
            Some(b) => match substitute(&b.to_string(), &bodies) {
                Ok(t) => t,
                Err(r) => {
                    responses.push(respond(
                        400,
                        halted(&format!("Invalid reference specified. No value for {r}")),
                    ));
                    failed_at.get_or_insert(i);
                    continue;
                }
            },
        };
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let seg = sub_segments(path);
        if seg.first().is_some_and(|s| s == "composite") && seg.len() == 1 {
            responses.push(respond(
                400,
                json!([{"errorCode": "INVALID_INPUT", "message": "composite cannot be nested"}]),
            ));
            failed_at.get_or_insert(i);
            continue;
        }
        let answer = answer_sub(state, req, method, seg, query, &sub_body);
        let out = answer.json();
        if answer.status.as_u16() >= 400 {
            failed_at.get_or_insert(i);
        } else {
            bodies.insert(reference.clone(), out.clone());
        }
        let mut r = respond(answer.status.as_u16(), out);
        if let Some((_, loc)) = answer.headers.iter().find(|(h, _)| *h == "location") {
            r["httpHeaders"] = json!({"Location": loc});
        }
        responses.push(r);
    }
    if let (Some(snapshot), Some(failed)) = (snapshot, failed_at) {
        state.org = snapshot;
        for (i, r) in responses.iter_mut().enumerate() {
            if i != failed {
                r["httpStatusCode"] = json!(400);
                r["body"] = halted(
                    "The transaction was rolled back since another operation in the same transaction failed.",
                );
                r["httpHeaders"] = json!({});
            }
        }
    }
    Answer::ok(StatusCode::OK, json!({"compositeResponse": responses}))
}

/// Answers a subrequest as the route it names would, with the headers and the time of the
/// request that carried it.
fn answer_sub(
    state: &mut State,
    req: &Req<'_>,
    method: Method,
    seg: Vec<String>,
    query: &str,
    body: &str,
) -> Answer {
    let sub_req = Req {
        method,
        seg,
        query: form_pairs(query),
        headers: req.headers,
        body: body.as_bytes(),
        now: req.now,
        api_version: req.api_version,
    };
    route_api(state, &sub_req)
}

/// The route segments of a subrequest URL (`/services/data/vNN.N/…` or `vNN.N/…`).
fn sub_segments(path: &str) -> Vec<String> {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("services/data/").unwrap_or(path);
    let relative = path.split_once('/').map(|(_, r)| r).unwrap_or("");
    relative
        .split('/')
        .filter(|s| !s.is_empty())
        .map(super::super::form::percent_decode)
        .collect()
}

/// `POST composite/batch`: up to 25 independent subrequests (no references), each
/// answered on its own; `haltOnError` stops at the first failure.
pub(super) fn composite_batch(state: &mut State, req: &Req<'_>) -> Answer {
    let (halt, subs) = match subrequests(req.body, "haltOnError", "batchRequests") {
        Ok(s) => s,
        Err(a) => return a,
    };
    let mut results = Vec::new();
    let mut has_errors = false;
    for sub in &subs {
        if halt && has_errors {
            results.push(json!({"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}]}));
            continue;
        }
        let Some((method, url)) = method_and_url(sub) else {
            has_errors = true;
            results.push(json!({"statusCode": 400, "result": [{"errorCode": "INVALID_INPUT", "message": "Each subrequest needs a method and a url"}]}));
            continue;
        };
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let seg = sub_segments(path);
        if seg.first().is_some_and(|s| s == "composite") {
            has_errors = true;
            results.push(json!({"statusCode": 400, "result": [{"errorCode": "INVALID_INPUT", "message": "composite requests cannot be batched"}]}));
            continue;
        }
        let sub_body = sub
            .get("richInput")
            .map(Value::to_string)
            .unwrap_or_default();
        let answer = answer_sub(state, req, method, seg, query, &sub_body);
        let status = answer.status.as_u16();
        if status >= 400 {
            has_errors = true;
        }
        let result = answer.json();
        results.push(json!({"statusCode": status, "result": result}));
    }
    Answer::ok(
        StatusCode::OK,
        json!({"hasErrors": has_errors, "results": results}),
    )
}

/// `POST composite/tree/{Object}`: up to 200 records with nested children (under their
/// child relationship name, e.g. `Contacts`), each with a `referenceId`; one failure rolls
/// back the whole tree.
pub(super) fn composite_tree(state: &mut State, req: &Req<'_>, object: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let body = match body_object(req.body) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return bad_json("Expected a `records` array");
    };
    fn count(records: &[Value]) -> usize {
        records
            .iter()
            .map(|r| {
                1 + r
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter_map(|v| v.get("records").and_then(Value::as_array))
                    .map(|c| count(c))
                    .sum::<usize>()
            })
            .sum()
    }
    if count(records) > COLLECTION_LIMIT {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("Maximum number of records in a tree is {COLLECTION_LIMIT}"),
            &[],
        );
    }
    let snapshot = state.org.clone();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for r in records {
        insert_tree(state, req.now, object, None, r, &mut results, &mut errors);
    }
    let n = results.len();
    if !errors.is_empty() {
        state.org = snapshot;
        let mut answer = Answer::ok(
            StatusCode::BAD_REQUEST,
            json!({"hasErrors": true, "results": errors}),
        );
        answer.records = Some(n + errors.len());
        return answer;
    }
    let mut answer = Answer::ok(
        StatusCode::CREATED,
        json!({"hasErrors": false, "results": results}),
    );
    answer.records = Some(n);
    answer
}

/// Inserts one tree record (its parent lookup set when it is a child) and then its children.
fn insert_tree(
    state: &mut State,
    now: Timestamp,
    object: &str,
    parent: Option<(&str, &str)>,
    record: &Value,
    results: &mut Vec<Value>,
    errors: &mut Vec<Value>,
) {
    let Some(map) = record.as_object() else {
        errors.push(json!({"referenceId": null, "errors": [{"statusCode": "JSON_PARSER_ERROR", "message": "Each record must be a JSON object", "fields": []}]}));
        return;
    };
    let reference = map
        .get("attributes")
        .and_then(|a| a.get("referenceId"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut values = Map::new();
    let mut children: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in map {
        if k == "attributes" {
            continue;
        }
        match v.get("records").and_then(Value::as_array) {
            Some(list) if v.is_object() => children.push((k.clone(), list.clone())),
            _ => {
                values.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some((field, id)) = parent {
        values.insert(field.to_string(), json!(id));
    }
    let id = match state.org.create(object, values, now) {
        Ok(id) => id,
        Err(e) => {
            errors.push(json!({"referenceId": reference, "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}]}));
            return;
        }
    };
    results.push(json!({"referenceId": reference, "id": id}));
    for (relationship, list) in children {
        // The child object and lookup field of the relationship (`Contacts` → Contact.AccountId).
        let child = state.org.bundle().objects.iter().find_map(|(child, spec)| {
            let (field, _) = spec
                .fields
                .iter()
                .find(|(_, f)| f.to.as_deref() == Some(object))?;
            super::describe::relationship_name(child)
                .eq_ignore_ascii_case(&relationship)
                .then(|| (child.clone(), field.clone()))
        });
        let Some((child, field)) = child else {
            errors.push(json!({"referenceId": reference, "errors": [{"statusCode": "INVALID_FIELD", "message": format!("No such column '{relationship}' on entity '{object}'"), "fields": [relationship]}]}));
            continue;
        };
        for c in &list {
            insert_tree(state, now, &child, Some((&field, &id)), c, results, errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_earlier_bodies() {
        let mut bodies = HashMap::new();
        bodies.insert(
            "acct".to_string(),
            json!({"id": "001X", "records": [{"Id": "003Y"}]}),
        );
        assert_eq!(
            substitute("/sobjects/Account/@{acct.id}", &bodies).unwrap(),
            "/sobjects/Account/001X"
        );
        assert_eq!(
            substitute("{\"AccountId\":\"@{acct.records[0].Id}\"}", &bodies).unwrap(),
            "{\"AccountId\":\"003Y\"}"
        );
        assert_eq!(
            substitute("@{nope.id}", &bodies).unwrap_err(),
            "nope.id".to_string()
        );
    }
}
