//! Global and object describe, as clients that generate code or forms from it read them.
//! Labels are the bundle's where it gives them (`label` on an object or field), else
//! derived from the API name.

use super::*;

/// A readable label from an API name: `BP_Account_Key__c` → "BP Account Key",
/// `LastModifiedById` → "Last Modified By ID", `FirstName` → "First Name".
pub(crate) fn label_of(api_name: &str) -> String {
    let base = api_name.strip_suffix("__c").unwrap_or(api_name);
    let mut words: Vec<String> = Vec::new();
    for part in base.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<char> = part.chars().collect();
        let mut word = String::new();
        for (i, c) in chars.iter().enumerate() {
            // A new word starts at an upper-case letter after a lower-case one, or before
            // a lower-case one inside a run of capitals ("URLField" → "URL Field").
            let boundary = i > 0
                && c.is_uppercase()
                && (chars[i - 1].is_lowercase()
                    || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
            if boundary && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            word.push(*c);
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words
        .into_iter()
        .map(|w| if w == "Id" { "ID".to_string() } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The plural of a label ("Opportunity" → "Opportunities").
fn plural(label: &str) -> String {
    match label.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{stem}ies"),
        _ if label.ends_with('s') || label.ends_with('x') || label.ends_with("ch") => {
            format!("{label}es")
        }
        _ => format!("{label}s"),
    }
}

/// The SOAP type of a describe type.
fn soap_type(ty: &str) -> &'static str {
    match ty {
        "id" | "reference" => "tns:ID",
        "boolean" => "xsd:boolean",
        "int" => "xsd:int",
        "double" | "currency" | "percent" => "xsd:double",
        "date" => "xsd:date",
        "datetime" => "xsd:dateTime",
        _ => "xsd:string",
    }
}

/// Whether a field of describe type `ty` can be grouped (`GROUP BY`).
pub(super) fn groupable(ty: &str) -> bool {
    matches!(
        ty,
        "id" | "reference"
            | "string"
            | "email"
            | "phone"
            | "url"
            | "picklist"
            | "boolean"
            | "date"
            | "int"
    )
}

/// One field's describe. `length` is Salesforce's: 18 for IDs, the text length for text,
/// 255 for picklists, 0 for numbers, dates and checkboxes.
#[allow(clippy::too_many_arguments)]
fn field_describe(
    name: &str,
    ty: &str,
    length: u32,
    nillable: bool,
    writable: bool,
    external_id: bool,
    unique: bool,
    custom: bool,
) -> Map<String, Value> {
    let (precision, scale, digits) = match ty {
        "currency" => (18, 2, 0),
        "double" => (18, 2, 0),
        "percent" => (3, 0, 0),
        "int" => (0, 0, 9),
        _ => (0, 0, 0),
    };
    let long_text = ty == "textarea";
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("label".into(), json!(label_of(name)));
    m.insert("type".into(), json!(ty));
    m.insert("soapType".into(), json!(soap_type(ty)));
    m.insert("length".into(), json!(length));
    m.insert("byteLength".into(), json!(length * 3));
    m.insert("precision".into(), json!(precision));
    m.insert("scale".into(), json!(scale));
    m.insert("digits".into(), json!(digits));
    m.insert("nillable".into(), json!(nillable));
    m.insert("createable".into(), json!(writable));
    m.insert("updateable".into(), json!(writable));
    m.insert(
        "defaultedOnCreate".into(),
        json!(!writable || ty == "boolean"),
    );
    m.insert(
        "defaultValue".into(),
        if ty == "boolean" {
            json!(false)
        } else {
            Value::Null
        },
    );
    m.insert("externalId".into(), json!(external_id));
    m.insert("unique".into(), json!(unique));
    m.insert("idLookup".into(), json!(ty == "id" || external_id));
    m.insert("custom".into(), json!(custom));
    m.insert("calculated".into(), json!(false));
    m.insert("filterable".into(), json!(!long_text));
    m.insert("sortable".into(), json!(!long_text));
    m.insert("groupable".into(), json!(groupable(ty)));
    m.insert("nameField".into(), json!(name == "Name"));
    m.insert("relationshipName".into(), Value::Null);
    m.insert("referenceTo".into(), json!([]));
    m.insert("restrictedPicklist".into(), json!(false));
    m.insert("picklistValues".into(), json!([]));
    m
}

fn system_fields(object_label: &str) -> Vec<Value> {
    let sys = |name: &str, ty: &str, to: Option<&str>| {
        let length = if ty == "id" || ty == "reference" {
            18
        } else {
            0
        };
        let mut m = field_describe(name, ty, length, false, false, false, false, false);
        if let Some(to) = to {
            m.insert("referenceTo".into(), json!([to]));
            m.insert(
                "relationshipName".into(),
                json!(name.strip_suffix("Id").unwrap_or(name)),
            );
        }
        if ty == "id" {
            m.insert("label".into(), json!(format!("{object_label} ID")));
        }
        Value::Object(m)
    };
    vec![
        sys("Id", "id", None),
        sys("IsDeleted", "boolean", None),
        sys("CreatedDate", "datetime", None),
        sys("CreatedById", "reference", Some("User")),
        sys("LastModifiedDate", "datetime", None),
        sys("LastModifiedById", "reference", Some("User")),
        sys("SystemModstamp", "datetime", None),
    ]
}

/// The org's objects, the read-only `User` among them.
fn object_names(state: &State) -> Vec<String> {
    let mut names: Vec<String> = state.org.bundle().objects.keys().cloned().collect();
    if !names.iter().any(|n| n == "User") {
        names.push("User".into());
        names.sort();
    }
    names
}

/// An object's label: the bundle's, else derived from the API name.
fn object_label(state: &State, name: &str) -> String {
    state
        .org
        .bundle()
        .object(name)
        .and_then(|o| o.label.clone())
        .unwrap_or_else(|| label_of(name))
}

pub(super) fn sobjects_list(state: &State, v: &str) -> Answer {
    let objs: Vec<Value> = object_names(state)
        .iter()
        .map(|name| object_summary(name, &object_label(state, name), v))
        .collect();
    Answer::ok(
        StatusCode::OK,
        json!({"encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT, "sobjects": objs}),
    )
}

pub(super) fn object_summary(name: &str, label: &str, v: &str) -> Value {
    let writable = name != "User";
    let base = format!("/services/data/v{v}/sobjects/{name}");
    json!({"name": name, "label": label, "labelPlural": plural(label),
        "keyPrefix": ids::key_prefix(name), "createable": writable, "updateable": writable,
        "deletable": writable, "queryable": name != "User", "retrieveable": true,
        "searchable": true, "custom": name.ends_with("__c"),
        "urls": {"sobject": base, "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}")}})
}

pub(super) fn object_info(state: &State, object: &str, v: &str) -> Answer {
    if !state.org.has_object(object) && object != "User" {
        return unknown_object(object);
    }
    Answer::ok(
        StatusCode::OK,
        json!({"objectDescribe": object_summary(object, &object_label(state, object), v), "recentItems": []}),
    )
}

pub(super) fn describe(state: &State, object: &str, v: &str) -> Answer {
    if object == "User" && state.org.bundle().object("User").is_none() {
        return user_describe(v);
    }
    let Some(spec) = state.org.bundle().object(object) else {
        return unknown_object(object);
    };
    let label = object_label(state, object);
    let mut fields = system_fields(&label);
    for (name, f) in &spec.fields {
        let is_ext = *name == spec.external_id;
        let ty = f.ty.describe_name();
        let length = match f.ty {
            crate::contract::FieldType::Picklist => 255,
            crate::contract::FieldType::Reference => 18,
            t if t.is_number() => 0,
            crate::contract::FieldType::Boolean
            | crate::contract::FieldType::Date
            | crate::contract::FieldType::Datetime => 0,
            _ => f.max_length.unwrap_or(255),
        };
        let nillable = !f.required && f.ty != crate::contract::FieldType::Boolean;
        let mut m = field_describe(
            name,
            ty,
            length,
            nillable,
            true,
            is_ext,
            is_ext && spec.unique_external_id,
            name.ends_with("__c"),
        );
        if let Some(l) = &f.label {
            m.insert("label".into(), json!(l));
        }
        m.insert("relationshipName".into(), json!(f.relationship));
        m.insert("referenceTo".into(), json!(f.to.iter().collect::<Vec<_>>()));
        m.insert(
            "restrictedPicklist".into(),
            json!(f.ty == crate::contract::FieldType::Picklist && f.restricted),
        );
        m.insert(
            "picklistValues".into(),
            json!(f
                .values
                .iter()
                .flatten()
                .map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": false, "validFor": null}))
                .collect::<Vec<_>>()),
        );
        fields.push(Value::Object(m));
    }
    let mut summary = object_summary(object, &label, v);
    summary["fields"] = Value::Array(fields);
    summary["childRelationships"] = Value::Array(child_relationships(state, object));
    Answer::ok(StatusCode::OK, summary)
}

/// The child relationship name of `child` under its parent (`Contact` → `Contacts`).
pub(super) fn relationship_name(child: &str) -> String {
    plural(child.strip_suffix("__c").unwrap_or(child))
}

/// Lookups of other objects that point at `object`.
fn child_relationships(state: &State, object: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (child, spec) in &state.org.bundle().objects {
        for (field, f) in &spec.fields {
            if f.to.as_deref() == Some(object) {
                out.push(json!({
                    "childSObject": child,
                    "field": field,
                    "relationshipName": relationship_name(child),
                    "cascadeDelete": false,
                    "restrictedDelete": false,
                    "deprecatedAndHidden": false,
                    "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                }));
            }
        }
    }
    out
}

/// `User`: read-only, the API user and the sales rep the scenarios' manual edits act as.
fn user_describe(v: &str) -> Answer {
    let mut fields = system_fields("User");
    for (name, ty, length) in [
        ("Username", "string", 80),
        ("Name", "string", 121),
        ("Email", "email", 128),
        ("IsActive", "boolean", 0),
    ] {
        let unique = name == "Username";
        let mut m = field_describe(name, ty, length, false, false, false, unique, false);
        m.insert("idLookup".into(), json!(unique));
        fields.push(Value::Object(m));
    }
    let mut summary = object_summary("User", "User", v);
    summary["fields"] = Value::Array(fields);
    summary["childRelationships"] = json!([]);
    Answer::ok(StatusCode::OK, summary)
}

/// The org's users as `GET sobjects/User/{id}` returns them.
pub(super) fn user_record(id: &str, v: &str) -> Option<Value> {
    let (username, name) = match id {
        API_USER_ID => ("integration@syncgate.mock", "Integration User"),
        crate::mock::org::REP_USER_ID => ("rep@syncgate.mock", "Sales Rep"),
        _ => return None,
    };
    Some(json!({
        "attributes": attributes("User", id, v),
        "Id": id,
        "Username": username,
        "Name": name,
        "Email": username,
        "IsActive": true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_salesforce_labels() {
        assert_eq!(label_of("BP_Account_Key__c"), "BP Account Key");
        assert_eq!(label_of("LastModifiedById"), "Last Modified By ID");
        assert_eq!(label_of("FirstName"), "First Name");
        assert_eq!(label_of("Name"), "Name");
        assert_eq!(plural("Opportunity"), "Opportunities");
        assert_eq!(plural("Account"), "Accounts");
        assert_eq!(plural("Business"), "Businesses");
    }
}
