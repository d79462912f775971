//! sObject rows: create, read (by ID or external ID), update with preconditions, upsert
//! by external ID.

use super::*;

pub(super) fn record_answer(state: &State, req: &Req<'_>, object: &str, rec: &Record) -> Answer {
    let spec = state.org.bundle().object(object);
    let mut body = rec.to_json_with(object, req.api_version, spec);
    // `?fields=A,B` narrows the answer.
    if let (Some(list), Value::Object(map)) = (req.param("fields"), &mut body) {
        let wanted: Vec<String> = list.split(',').map(|f| f.trim().to_lowercase()).collect();
        map.retain(|k, _| k == "attributes" || wanted.contains(&k.to_lowercase()));
    }
    Answer::ok(StatusCode::OK, body)
        .with_header("etag", rec.etag())
        .with_header("last-modified", rec.modified.to_http_date())
}

pub(super) fn read_by_id(state: &State, req: &Req<'_>, object: &str, id: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    match state.org.get(object, id) {
        Some(r) => {
            let since = req
                .header("if-modified-since")
                .and_then(Timestamp::parse_http_date);
            if since.is_some_and(|s| truncate_secs(r.modified) <= s) {
                return Answer::empty(StatusCode::NOT_MODIFIED);
            }
            record_answer(state, req, object, r)
        }
        None => deleted_or_missing(state, object, id),
    }
}

pub(super) fn truncate_secs(t: Timestamp) -> Timestamp {
    Timestamp::from_millis(t.as_millis().div_euclid(1000) * 1000)
}

/// The one live record with `field = value`, or the answer explaining why there is none.
pub(super) fn external_match(
    state: &State,
    object: &str,
    field: &str,
    value: &str,
) -> Result<String, Answer> {
    let Some(spec) = state.org.bundle().object(object) else {
        return Err(unknown_object(object));
    };
    if field != spec.external_id && field != "Id" {
        return Err(Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
            &[],
        ));
    }
    if field == "Id" {
        return Ok(value.to_string());
    }
    let found = state.org.find_by_external_id(object, value);
    match found.as_slice() {
        [] => Err(Answer::not_found()),
        [one] => Ok(one.id.clone()),
        many => Err(Answer::ok(
            StatusCode::MULTIPLE_CHOICES,
            json!(many
                .iter()
                .map(|r| format!(
                    "/services/data/v{}/sobjects/{object}/{}",
                    state.org.bundle().api_version,
                    r.id
                ))
                .collect::<Vec<_>>()),
        )),
    }
}

pub(super) fn read_by_external_id(
    state: &State,
    req: &Req<'_>,
    object: &str,
    field: &str,
    value: &str,
) -> Answer {
    match external_match(state, object, field, value) {
        Err(a) => a,
        Ok(id) => match state.org.get(object, &id) {
            Some(r) => record_answer(state, req, object, r),
            None => Answer::not_found(),
        },
    }
}

pub(super) fn create_one(state: &mut State, req: &Req<'_>, object: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let values = match body_object(req.body) {
        Ok(m) => m,
        Err(a) => return a,
    };
    match state.org.create(object, values, req.now) {
        Ok(id) => Answer::ok(
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": []}),
        )
        .with_header(
            "location",
            format!("/services/data/v{}/sobjects/{object}/{id}", req.api_version),
        ),
        Err(e) => Answer::from_record_error(&e),
    }
}

/// `412` when `If-Unmodified-Since` or `If-Match` says the record changed since the client
/// read it.
pub(super) fn precondition(req: &Req<'_>, rec: &Record) -> Option<Answer> {
    let stale_date = req
        .header("if-unmodified-since")
        .and_then(Timestamp::parse_http_date)
        .is_some_and(|since| truncate_secs(rec.modified) > since);
    let stale_tag = req
        .header("if-match")
        .is_some_and(|tags| tags.trim() != "*" && !tags.split(',').any(|t| t.trim() == rec.etag()));
    (stale_date || stale_tag).then(|| {
        Answer::error(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
            "The requested record has been modified since the date or version you specified",
            &[],
        )
    })
}

pub(super) fn update_one(state: &mut State, req: &Req<'_>, object: &str, id: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let values = match body_object(req.body) {
        Ok(m) => m,
        Err(a) => return a,
    };
    if let Some(rec) = state.org.get(object, id) {
        if let Some(a) = precondition(req, rec) {
            return a;
        }
    }
    match state.org.update(object, id, values, req.now) {
        Ok(()) => Answer::empty(StatusCode::NO_CONTENT),
        Err(e) => Answer::from_record_error(&e),
    }
}

pub(super) fn upsert_one(
    state: &mut State,
    req: &Req<'_>,
    object: &str,
    field: &str,
    value: &str,
) -> Answer {
    let values = match body_object(req.body) {
        Ok(m) => m,
        Err(a) => return a,
    };
    if field == "Id" {
        return update_one(state, req, object, value);
    }
    for rec in state.org.find_by_external_id(object, value) {
        if let Some(a) = precondition(req, rec) {
            return a;
        }
    }
    match state.org.prepare_upsert(object, field, value, values) {
        Ok(p) => {
            let done = state.org.apply(p, req.now);
            let status = if done.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Answer::ok(
                status,
                json!({"id": done.id, "success": true, "errors": [], "created": done.created}),
            )
        }
        Err(UpsertError::Ambiguous(ids)) => {
            let urls: Vec<String> = ids
                .iter()
                .map(|id| {
                    format!(
                        "/services/data/v{}/sobjects/{object}/{id}",
                        state.org.bundle().api_version
                    )
                })
                .collect();
            Answer::ok(StatusCode::MULTIPLE_CHOICES, json!(urls))
        }
        Err(UpsertError::Record(e)) => Answer::from_record_error(&e),
    }
}

/// A record in the recycle bin is `ENTITY_IS_DELETED`; one that never existed `NOT_FOUND`.
pub(super) fn deleted_or_missing(state: &State, object: &str, id: &str) -> Answer {
    match state.org.get_any(object, id) {
        Some(r) if r.deleted => Answer::error(
            StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
            &[],
        ),
        _ => Answer::not_found(),
    }
}

/// `GET sobjects/{Object}/updated/?start=&end=` and `…/deleted/`: the IDs changed (or
/// deleted) in the window, as replication clients poll them.
pub(super) fn changed_since(state: &State, req: &Req<'_>, object: &str, deleted: bool) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let parse = |key: &str| {
        req.param(key)
            .map(|v| Timestamp::parse(v.trim()).ok_or(v.to_string()))
    };
    let (start, end) = match (parse("start"), parse("end")) {
        (Some(Ok(s)), Some(Ok(e))) => (s, e),
        (None, _) | (_, None) => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "MISSING_ARGUMENT",
                "start and end are both required, as ISO 8601 date-times",
                &[],
            )
        }
        (Some(Err(v)), _) | (_, Some(Err(v))) => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATE_FORMAT",
                format!("{v} is not a valid date-time; use ISO 8601 with an offset"),
                &[],
            )
        }
    };
    if end < start {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "INVALID_REPLICATION_DATE",
            "end must not be before start",
            &[],
        );
    }
    // The window is read at minute precision, as Salesforce does.
    let minute = |t: Timestamp| Timestamp::from_millis(t.as_millis().div_euclid(60_000) * 60_000);
    let (start, end) = (minute(start), minute(end));
    let within = |t: Timestamp| t >= start && t < end;
    if deleted {
        let rows: Vec<Value> = state
            .org
            .all_records(object)
            .filter(|r| r.deleted && within(r.modified))
            .map(|r| json!({"id": r.id, "deletedDate": r.modified.to_salesforce()}))
            .collect();
        let earliest = state
            .org
            .all_records(object)
            .map(|r| r.created)
            .min()
            .unwrap_or(start);
        Answer::ok(
            StatusCode::OK,
            json!({"deletedRecords": rows, "earliestDateAvailable": earliest.to_salesforce(),
                "latestDateCovered": end.to_salesforce()}),
        )
    } else {
        let ids: Vec<&str> = state
            .org
            .records(object)
            .filter(|r| within(r.modified))
            .map(|r| r.id.as_str())
            .collect();
        Answer::ok(
            StatusCode::OK,
            json!({"ids": ids, "latestDateCovered": end.to_salesforce()}),
        )
    }
}
