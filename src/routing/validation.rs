//! Knative's admission rules for traffic blocks, names and the rollout duration.
//!
//! Owns: the ports of serving `pkg/apis/serving/v1/route_validation.go` (RV: `TrafficTarget.
//! Validate`, `validateTrafficList`, the traffic half of `Route.Validate` and of
//! `Service.Validate`), serving `pkg/apis/serving/metadata_validation.go`
//! (`ValidateRolloutDurationAnnotation`), serving `route_lifecycle.go` (RL:
//! `Route.RolloutDuration`), the duration choice of the route reconciler (`reconcile_resources.go`
//! `reconcileRollout`), networking `pkg/config/config.go` (the config-network
//! `rollout-duration` key), knative/pkg `apis/metadata_validation.go` (the object name rule) and
//! the k8s apimachinery `pkg/util/validation` checks those use (`IsDNS1035Label`,
//! `IsQualifiedName`, `IsDNS1123Subdomain`), with their messages byte for byte.
//! The spec followed is `docs/knative/routing.md` A13, A14 and C9.
//!
//! Must not: resolve targets against revisions (`resolve`), default anything (`target`), or
//! check what upstream does not check. Labels, owner references, `generateName` and the
//! autoscaling-annotation ban of `ValidateObjectMetadata` are outside splitlab's model and are
//! not validated here.
//!
//! Knative runs validation on the *defaulted* object (the defaulting webhook runs first), so a
//! caller holding user input calls [`crate::routing::target::default_traffic`] before
//! [`validate_route`] / [`validate_service`]. The rules themselves read `Option` fields exactly
//! as Go reads its pointers, so they also give upstream's results on undefaulted input, which is
//! how upstream's own tests call them (and how the tests below reproduce them).

use std::collections::BTreeMap;

use crate::routing::duration::{duration_seconds, parse_duration, round_duration, SECOND};
use crate::routing::field_error::{
    err_disallowed_fields, err_generic, err_invalid_array_value, err_invalid_key_name,
    err_invalid_value, err_missing_field, err_missing_one_of, err_multiple_one_of,
    err_out_of_bounds_value, go_quote, FieldError, FieldErrorExt, CURRENT_FIELD,
};
use crate::routing::{ObjectMeta, TrafficTarget};

/// `serving.RolloutDurationKey`: the Route/Service annotation (serving `register.go:61`).
pub const ROLLOUT_DURATION_KEY: &str = "serving.knative.dev/rollout-duration";
/// The legacy spelling, second in `RolloutDurationAnnotation`'s priority (`register.go:181-184`).
pub const ROLLOUT_DURATION_LEGACY_KEY: &str = "serving.knative.dev/rolloutDuration";
/// `kmap.KeyPriority` order for the annotation: the first key *present* wins.
pub const ROLLOUT_DURATION_KEYS: [&str; 2] = [ROLLOUT_DURATION_KEY, ROLLOUT_DURATION_LEGACY_KEY];

/// config-network `rollout-duration` (networking `config.go` `RolloutDurationKey`).
pub const CONFIG_NETWORK_ROLLOUT_DURATION_KEY: &str = "rollout-duration";
/// config-network's legacy `rolloutDuration`, parsed first and overridden by the new key.
pub const CONFIG_NETWORK_ROLLOUT_DURATION_LEGACY_KEY: &str = "rolloutDuration";

/// Where a traffic block sits, which decides the rules that apply (upstream reads these from the
/// Go `context`: `apis.IsInSpec`, `apis.IsInStatus`, `HasDefaultConfigurationName`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `apis.WithinSpec`: `spec.traffic`.
    Spec,
    /// `apis.WithinStatus`: `status.traffic`.
    Status,
    /// Neither (a bare `context.Background()`, used by upstream's unit tests).
    Unscoped,
}

/// The validation context of one traffic target or list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetContext {
    /// Spec, status or neither.
    pub scope: Scope,
    /// `WithDefaultConfigurationName`: the traffic belongs to a Service, whose configuration is
    /// implied, so `configurationName` may not be written.
    pub default_configuration_name: bool,
}

impl TargetContext {
    /// A Route's `spec.traffic`.
    pub const ROUTE_SPEC: TargetContext = TargetContext {
        scope: Scope::Spec,
        default_configuration_name: false,
    };
    /// A Service's `spec.traffic` (`service_validation.go:55-60`).
    pub const SERVICE_SPEC: TargetContext = TargetContext {
        scope: Scope::Spec,
        default_configuration_name: true,
    };
    /// A Route's `status.traffic`.
    pub const STATUS: TargetContext = TargetContext {
        scope: Scope::Status,
        default_configuration_name: false,
    };
    /// No context at all.
    pub const UNSCOPED: TargetContext = TargetContext {
        scope: Scope::Unscoped,
        default_configuration_name: false,
    };

    fn in_spec(self) -> bool {
        self.scope == Scope::Spec
    }

    fn in_status(self) -> bool {
        self.scope == Scope::Status
    }
}

/// `TrafficTarget.Validate` (RV:100-192): the rules for one target, in upstream's order. Paths
/// are relative to the target (`latestRevision`, `percent`, ...).
pub fn validate_traffic_target(t: &TrafficTarget, ctx: TargetContext) -> Option<FieldError> {
    let errs = validate_latest_revision(t, ctx);
    let errs = validate_revision_and_configuration(t, ctx, errs);
    let errs = validate_traffic_percentage(t, errs);
    validate_url(t, ctx, errs)
}

/// `validateLatestRevision`: only in spec and only when `latestRevision` is set, its sense must
/// be the opposite of "a revision is pinned".
fn validate_latest_revision(t: &TrafficTarget, ctx: TargetContext) -> Option<FieldError> {
    let lr = t.latest_revision?;
    if ctx.in_spec() {
        let pinned = !t.revision_name.is_empty();
        if pinned == lr {
            return Some(err_generic(
                format!(
                    "may not set revisionName {} when latestRevision is {lr}",
                    go_quote(&t.revision_name)
                ),
                &["latestRevision"],
            ));
        }
    }
    None
}

/// `validateRevisionAndConfiguration`: exactly one target reference; the first matching case
/// wins.
fn validate_revision_and_configuration(
    t: &TrafficTarget,
    ctx: TargetContext,
    errs: Option<FieldError>,
) -> Option<FieldError> {
    let has_rev = !t.revision_name.is_empty();
    let has_cfg = !t.configuration_name.is_empty();
    if ctx.default_configuration_name && has_cfg {
        // A Service implies its configuration; naming one is not allowed.
        errs.also(err_disallowed_fields(&["configurationName"]))
    } else if has_rev && has_cfg {
        errs.also(err_multiple_one_of(&["revisionName", "configurationName"]))
    } else if has_rev {
        errs.also(invalid_key_name_error(&t.revision_name, "revisionName"))
    } else if ctx.in_status() {
        // Status entries always name the revision that serves them.
        errs.also(err_missing_field(&["revisionName"]))
    } else if has_cfg {
        errs.also(invalid_key_name_error(
            &t.configuration_name,
            "configurationName",
        ))
    } else if ctx.default_configuration_name {
        // The implied configuration is already a valid name.
        errs
    } else {
        errs.also(err_missing_one_of(&["revisionName", "configurationName"]))
    }
}

/// `ErrInvalidKeyName(name, path, IsQualifiedName(name)...)` when the name is not qualified.
fn invalid_key_name_error(name: &str, path: &str) -> Option<FieldError> {
    let msgs = is_qualified_name(name);
    if msgs.is_empty() {
        return None;
    }
    let details: Vec<&str> = msgs.iter().map(String::as_str).collect();
    Some(err_invalid_key_name(name, path, &details))
}

/// `validateTrafficPercentage`: a set percent lies in [0, 100].
fn validate_traffic_percentage(t: &TrafficTarget, errs: Option<FieldError>) -> Option<FieldError> {
    match t.percent {
        Some(p) if !(0..=100).contains(&p) => {
            errs.also(err_out_of_bounds_value(p, 0, 100, "percent"))
        }
        _ => errs,
    }
}

/// `validateURL`: no URL in spec, none without a tag, and a tagged status entry needs one. The
/// two "must not set" errors can both fire; `Display` merges them into one line.
fn validate_url(
    t: &TrafficTarget,
    ctx: TargetContext,
    mut errs: Option<FieldError>,
) -> Option<FieldError> {
    // `tt.URL.String() != ""`: an empty URL counts as unset.
    let has_url = t.url.as_deref().is_some_and(|u| !u.is_empty());
    if has_url {
        if ctx.in_spec() {
            errs = errs.also(err_disallowed_fields(&["url"]));
        }
        if t.tag.is_empty() {
            errs = errs.also(err_disallowed_fields(&["url"]));
        }
    } else if !t.tag.is_empty() && ctx.in_status() {
        errs = errs.also(err_missing_field(&["url"]));
    }
    errs
}

/// `validateTrafficList` (RV:48-92): every target under `[i]`, every tag a DNS-1035 label and
/// unique, and the percents summing to exactly 100. Paths are relative to the list (`[0].tag`,
/// `tag[0]`, and `""` for the sum); the caller adds `traffic` with `via_field`.
pub fn validate_traffic_list(traffic: &[TrafficTarget], ctx: TargetContext) -> Option<FieldError> {
    let mut errs: Option<FieldError> = None;
    // The first index each tag was seen at, to report duplicates.
    let mut first_by_tag: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sum: i64 = 0;
    for (i, tt) in traffic.iter().enumerate() {
        errs = errs.also(validate_traffic_target(tt, ctx).via_index(i));
        if let Some(p) = tt.percent {
            // Go's int64 addition wraps; so does this, rather than panicking on absurd input.
            sum = sum.wrapping_add(p);
        }
        if tt.tag.is_empty() {
            continue;
        }
        let msgs = is_dns1035_label(&tt.tag);
        if !msgs.is_empty() {
            errs = errs.also(err_invalid_array_value(
                format!("not a DNS 1035 label: {}", go_string_slice(&msgs)),
                "tag",
                i,
            ));
        }
        match first_by_tag.get(tt.tag.as_str()) {
            // Only one definition per tag, even when both point at the same target.
            Some(&idx) => {
                errs = errs.also(err_generic(
                    format!("Multiple definitions for {}", go_quote(&tt.tag)),
                    &[&format!("[{i}].tag"), &format!("[{idx}].tag")],
                ));
            }
            None => {
                first_by_tag.insert(&tt.tag, i);
            }
        }
    }
    if sum != 100 {
        errs = errs.also(err_generic(
            format!("Traffic targets sum to {sum}, want 100"),
            &[CURRENT_FIELD],
        ));
    }
    errs
}

/// The routing part of `Route.Validate` (RV:29-45 and `serving.ValidateObjectMetadata`):
/// `metadata.name` is a DNS-1035 label, the rollout-duration annotation is valid
/// (`metadata.annotations.<key>`), and `spec.traffic` passes [`validate_traffic_list`] in the
/// Route spec context.
///
/// Knative validates the defaulted Route: call [`crate::routing::target::default_traffic`]
/// (`service_context = false`) on user input first.
pub fn validate_route(meta: &ObjectMeta, traffic: &[TrafficTarget]) -> Option<FieldError> {
    validate_with(meta, traffic, TargetContext::ROUTE_SPEC)
}

/// The routing part of `Service.Validate` (`service_validation.go`): as [`validate_route`], but
/// the traffic is validated with the default configuration name in context, so targets may not
/// name a configuration.
///
/// Knative validates the defaulted Service: call [`crate::routing::target::default_traffic`]
/// (`service_context = true`) first. That matters here: an empty Service traffic block
/// defaults to `[{latestRevision: true, percent: 100}]`, but undefaulted it fails with
/// `Traffic targets sum to 0, want 100: spec.traffic`.
pub fn validate_service(meta: &ObjectMeta, traffic: &[TrafficTarget]) -> Option<FieldError> {
    validate_with(meta, traffic, TargetContext::SERVICE_SPEC)
}

fn validate_with(
    meta: &ObjectMeta,
    traffic: &[TrafficTarget],
    ctx: TargetContext,
) -> Option<FieldError> {
    let metadata = validate_object_name(&meta.name)
        .also(validate_rollout_duration_annotation(&meta.annotations).via_field("annotations"))
        .via_field("metadata");
    metadata.also(
        validate_traffic_list(traffic, ctx)
            .via_field("traffic")
            .via_field("spec"),
    )
}

/// knative/pkg `apis.ValidateObjectMetadata` for `name` (`metadata_validation.go:55-60`):
/// required, and a DNS-1035 label. Path `name`.
fn validate_object_name(name: &str) -> Option<FieldError> {
    if name.is_empty() {
        // No generateName in splitlab's model, so an empty name is simply missing.
        return Some(err_generic("name or generateName is required", &["name"]));
    }
    let msgs = is_dns1035_label(name);
    if msgs.is_empty() {
        return None;
    }
    Some(err_generic(
        format!("not a DNS 1035 label: {}", go_string_slice(&msgs)),
        &["name"],
    ))
}

/// `RolloutDurationAnnotation.Get` (`kmap.KeyPriority`): the first key present and its value,
/// even when that value is empty; `None` when neither key is present.
pub fn rollout_duration_annotation(
    annotations: &BTreeMap<String, String>,
) -> Option<(&'static str, &str)> {
    ROLLOUT_DURATION_KEYS
        .iter()
        .find_map(|&k| annotations.get(k).map(|v| (k, v.as_str())))
}

/// `ValidateRolloutDurationAnnotation` (serving `metadata_validation.go:52-76`): a non-empty
/// value must parse as a Go duration, have whole-second precision and not be negative (0 is
/// allowed). The path is the key actually used; callers add `metadata.annotations`.
pub fn validate_rollout_duration_annotation(
    annotations: &BTreeMap<String, String>,
) -> Option<FieldError> {
    let (key, value) = rollout_duration_annotation(annotations)?;
    if value.is_empty() {
        return None;
    }
    let Ok(d) = parse_duration(value) else {
        return Some(err_invalid_value(value, key, &[]));
    };
    // `d.Round(time.Second) != d`; the message echoes the value as written, not as parsed.
    if round_duration(d, SECOND) != d {
        return Some(err_generic(
            format!("rollout-duration={value} is not at second precision"),
            &[key],
        ));
    }
    if d < 0 {
        return Some(err_generic(
            format!("rollout-duration={value} must be positive"),
            &[key],
        ));
    }
    None
}

/// `Route.RolloutDuration()` (RL:66-74): the annotation's duration in nanoseconds; empty,
/// absent or unparseable gives 0 (the webhook should have rejected the latter).
pub fn rollout_duration(annotations: &BTreeMap<String, String>) -> i64 {
    match rollout_duration_annotation(annotations) {
        Some((_, v)) if !v.is_empty() => parse_duration(v).unwrap_or(0),
        _ => 0,
    }
}

/// The rollout duration the route reconciler uses, in whole seconds (`reconcileRollout`,
/// routing.md A4/A13): `int(RolloutDuration().Seconds())`, i.e. the annotation truncated toward
/// zero through float64, falling back to config-network's seconds when that is 0. A result
/// `<= 0` means gradual rollout is off.
pub fn reconciler_rollout_secs(
    annotations: &BTreeMap<String, String>,
    config_network_secs: i64,
) -> i64 {
    // Go's float64 -> int conversion truncates toward zero; |Seconds()| < 1e10, so `as` is exact
    // about it and cannot saturate.
    let rd = duration_seconds(rollout_duration(annotations)) as i64;
    if rd == 0 {
        config_network_secs
    } else {
        rd
    }
}

/// config-network's rollout duration in seconds (networking `config.go` `NewConfigFromMap`,
/// routing.md A13.2): `rolloutDuration` is parsed first and `rollout-duration` overrides it;
/// each present value must be a base-10 integer (Go `strconv.Atoi`, so `"380s"` fails) and the
/// result must not be negative. Default 0. Errors carry upstream's text.
pub fn parse_config_network_rollout_duration(
    data: &BTreeMap<String, String>,
) -> Result<i64, String> {
    let mut secs = 0;
    for key in [
        CONFIG_NETWORK_ROLLOUT_DURATION_LEGACY_KEY,
        CONFIG_NETWORK_ROLLOUT_DURATION_KEY,
    ] {
        if let Some(raw) = data.get(key) {
            // configmap.AsInt: the first failing parser aborts the whole config.
            secs = go_atoi(raw).map_err(|e| format!("failed to parse {}: {e}", go_quote(key)))?;
        }
    }
    if secs < 0 {
        return Err(format!(
            "{CONFIG_NETWORK_ROLLOUT_DURATION_KEY} must be a positive integer, but was {secs}"
        ));
    }
    Ok(secs)
}

/// Go `strconv.Atoi` on a 64-bit platform: optional sign, then decimal digits only, within i64.
/// The error is the `*NumError` text, e.g. `strconv.Atoi: parsing "380s": invalid syntax`.
fn go_atoi(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(s));
    let range = || format!("strconv.Atoi: parsing {}: value out of range", go_quote(s));
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    // ParseUint: a bad byte is a syntax error, unless the value overflowed first.
    let mut un: u64 = 0;
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            return Err(syntax());
        }
        un = un
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or_else(range)?;
    }
    // ParseInt's cutoff: 2^63 is allowed only when negative.
    let cutoff: u64 = 1 << 63;
    if (!neg && un >= cutoff) || (neg && un > cutoff) {
        return Err(range());
    }
    Ok(if neg {
        (un as i64).wrapping_neg()
    } else {
        un as i64
    })
}

// --- k8s apimachinery pkg/util/validation ---

const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
/// `DNS1035LabelMaxLength`.
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;

// dns1123LabelFmt + "(\\." + dns1123LabelFmt + ")*", spelled out.
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
/// `DNS1123SubdomainMaxLength`.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// `qualifiedNameMaxLength`.
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;

/// `MaxLenError`.
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `RegexError`: the message, the examples and the pattern, including upstream's double space
/// after each example's comma (`'my-name',  or 'abc-123'`).
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{ex}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// `EmptyError`.
const EMPTY_ERROR: &str = "must be non-empty";

/// Go's `%v` of a `[]string`: `[a b c]`.
fn go_string_slice(msgs: &[String]) -> String {
    format!("[{}]", msgs.join(" "))
}

/// Matches `^[a-z]([-a-z0-9]*[a-z0-9])?$` (Go's `$` is end of text, so no trailing newline).
fn matches_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_lowercase()
                && (last.is_ascii_lowercase() || last.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        }
        _ => false,
    }
}

/// Matches `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// Matches `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `validation.IsDNS1035Label`: the reasons `s` is not a DNS-1035 label (at most 63 bytes of
/// lower-case alphanumerics and `-`, starting with a letter and ending with an alphanumeric);
/// empty when it is one.
pub fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(s) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `validation.IsDNS1123Label`: the reasons `s` is not a DNS-1123 label (at most 63 bytes of
/// lower-case alphanumerics and `-`, starting and ending with an alphanumeric); empty when it is.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(s) {
        errs.push(regex_error(
            DNS1123_LABEL_ERR_MSG,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `validation.IsDNS1123Subdomain`: at most 253 bytes of dot-separated DNS-1123 labels.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    // `label(\.label)*` is exactly "split on '.', every piece a label".
    if !s.split('.').all(matches_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `validation.IsQualifiedName`: an optional DNS-1123 subdomain prefix and `/`, then a name of
/// at most 63 bytes matching `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`. Empty when valid.
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::target::default_traffic;
    use proptest::prelude::*;

    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const QNAME_DETAILS: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    const SPEC: TargetContext = TargetContext::ROUTE_SPEC;
    const STATUS: TargetContext = TargetContext::STATUS;
    const NONE: TargetContext = TargetContext::UNSCOPED;
    /// `WithDefaultConfigurationName` alone, without `WithinSpec`.
    const DEFAULT_ONLY: TargetContext = TargetContext {
        scope: Scope::Unscoped,
        default_configuration_name: true,
    };
    /// `WithDefaultConfigurationName(apis.WithinSpec(ctx))`.
    const SPEC_DEFAULT: TargetContext = TargetContext::SERVICE_SPEC;

    /// Annotation or config-map entries.
    type Pairs<'a> = Vec<(&'a str, &'a str)>;
    /// (subtest, metadata.name, annotations, spec traffic, want Error(); "" = valid).
    type ObjectRow<'a> = (&'a str, &'a str, Pairs<'a>, Vec<TrafficTarget>, &'a str);

    fn tt(
        tag: &str,
        rev: &str,
        cfg: &str,
        latest: Option<bool>,
        pct: Option<i64>,
    ) -> TrafficTarget {
        TrafficTarget {
            tag: tag.into(),
            revision_name: rev.into(),
            configuration_name: cfg.into(),
            latest_revision: latest,
            percent: pct,
            url: None,
        }
    }

    fn with_url(mut t: TrafficTarget, url: &str) -> TrafficTarget {
        t.url = Some(url.into());
        t
    }

    fn meta(name: &str, annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn annos(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn invalid_key_name(v: &str, path: &str) -> String {
        format!("invalid key name {}: {path}\n{QNAME_DETAILS}", go_quote(v))
    }

    #[test]
    fn test_traffic_target_validation() {
        // TestTrafficTargetValidation (route_validation_test.go, RVT:32-273); routing.md C9.
        // (subtest, target, context, want Error(); "" = valid). Inputs are upstream's, not
        // defaulted.
        let bad_rev = invalid_key_name("b ar", "revisionName");
        let bad_cfg = invalid_key_name("b ar", "configurationName");
        let cases: Vec<(&str, TrafficTarget, TargetContext, &str)> = vec![
            (
                "valid with revisionName",
                tt("", "bar", "", None, Some(12)),
                SPEC,
                "",
            ),
            (
                "valid with revisionName and name (spec)",
                tt("foo", "bar", "", None, Some(12)),
                SPEC,
                "",
            ),
            (
                "valid with revisionName and name (status)",
                with_url(tt("foo", "bar", "", None, Some(12)), "http://foo.bar.com"),
                STATUS,
                "",
            ),
            (
                "invalid with revisionName and name (status)",
                tt("foo", "bar", "", None, Some(12)),
                STATUS,
                "missing field(s): url",
            ),
            (
                "invalid with bad revisionName",
                tt("", "b ar", "", None, Some(12)),
                SPEC,
                &bad_rev,
            ),
            (
                "valid with revisionName and latestRevision",
                tt("", "bar", "", Some(false), Some(12)),
                SPEC,
                "",
            ),
            (
                "invalid with revisionName and latestRevision (spec)",
                tt("", "bar", "", Some(true), Some(12)),
                SPEC,
                r#"may not set revisionName "bar" when latestRevision is true: latestRevision"#,
            ),
            (
                "valid with revisionName and latestRevision (status)",
                tt("", "bar", "", Some(true), Some(12)),
                STATUS,
                "",
            ),
            (
                "valid with configurationName",
                tt("", "", "bar", None, Some(37)),
                SPEC,
                "",
            ),
            (
                "valid with configurationName and name (spec)",
                tt("foo", "", "bar", None, Some(37)),
                SPEC,
                "",
            ),
            (
                "invalid with bad configurationName",
                tt("", "", "b ar", None, Some(37)),
                SPEC,
                &bad_cfg,
            ),
            (
                "valid with configurationName and latestRevision",
                tt("", "", "blah", Some(true), Some(37)),
                SPEC,
                "",
            ),
            (
                "invalid with configurationName and latestRevision",
                tt("", "", "blah", Some(false), Some(37)),
                SPEC,
                r#"may not set revisionName "" when latestRevision is false: latestRevision"#,
            ),
            (
                "invalid with configurationName and default configurationName",
                tt("", "", "blah", None, Some(37)),
                DEFAULT_ONLY,
                "must not set the field(s): configurationName",
            ),
            (
                "valid with only default configurationName",
                tt("", "", "", None, Some(37)),
                SPEC_DEFAULT,
                "",
            ),
            (
                "valid with default configurationName and latestRevision",
                tt("", "", "", Some(true), Some(37)),
                SPEC_DEFAULT,
                "",
            ),
            (
                "invalid with default configurationName and latestRevision",
                tt("", "", "", Some(false), Some(37)),
                SPEC_DEFAULT,
                r#"may not set revisionName "" when latestRevision is false: latestRevision"#,
            ),
            (
                "invalid without revisionName in status",
                tt("", "", "blah", None, Some(37)),
                STATUS,
                "missing field(s): revisionName",
            ),
            (
                "valid with revisionName and default configurationName",
                tt("", "bar", "", None, Some(12)),
                DEFAULT_ONLY,
                "",
            ),
            (
                "valid with no percent",
                tt("", "", "booga", None, None),
                NONE,
                "",
            ),
            (
                "valid with nil percent",
                tt("", "", "booga", None, None),
                NONE,
                "",
            ),
            (
                "valid with zero percent",
                tt("", "", "booga", None, Some(0)),
                NONE,
                "",
            ),
            (
                "valid with no name",
                tt("", "", "booga", None, Some(100)),
                NONE,
                "",
            ),
            (
                "invalid with both",
                tt("", "foo", "bar", None, None),
                NONE,
                "expected exactly one, got both: configurationName, revisionName",
            ),
            (
                "invalid with neither",
                tt("", "", "", None, Some(100)),
                NONE,
                "expected exactly one, got neither: configurationName, revisionName",
            ),
            (
                "invalid percent too low",
                tt("", "foo", "", None, Some(-5)),
                NONE,
                "expected 0 <= -5 <= 100: percent",
            ),
            (
                "invalid percent too high",
                tt("", "foo", "", None, Some(101)),
                NONE,
                "expected 0 <= 101 <= 100: percent",
            ),
            (
                // In spec and untagged: two ErrDisallowedFields("url"), merged into one line.
                "disallowed url set",
                with_url(tt("", "", "foo", None, Some(100)), "should.not.be.set"),
                SPEC,
                "must not set the field(s): url",
            ),
        ];
        for (name, target, ctx, want) in cases {
            let got = validate_traffic_target(&target, ctx);
            assert_eq!(got.error_string(), want, "{name}");
            assert_eq!(got.is_none(), want.is_empty(), "{name}");
        }
    }

    #[test]
    fn bad_names_report_exact_details() {
        // The full texts of the two "bad name" rows of routing.md C9.
        let got = validate_traffic_target(&tt("", "b ar", "", None, Some(12)), SPEC);
        assert_eq!(
            got.error_string(),
            "invalid key name \"b ar\": revisionName\nname part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
    }

    #[test]
    fn test_route_validation() {
        // TestRouteValidation (RVT:275-468) and the Route rows of routing.md C9:
        // (subtest, name, annotations, spec traffic, want Error(); "" = valid).
        let dots = format!("not a DNS 1035 label: [{DNS1035_MSG}]: metadata.name");
        let dots_and_90 = format!("Traffic targets sum to 90, want 100: spec.traffic\n{dots}");
        let long_name = "a".repeat(64);
        let bad_tag =
            format!("invalid value: not a DNS 1035 label: [{DNS1035_MSG}]: spec.traffic.tag[0]");
        let cases: Vec<ObjectRow> = vec![
            ("valid", "valid", vec![], vec![tt("bar", "foo", "", None, Some(100))], ""),
            (
                "valid split",
                "valid",
                vec![],
                vec![
                    tt("prod", "foo", "", None, Some(90)),
                    tt("experiment", "", "bar", None, Some(10)),
                ],
                "",
            ),
            (
                "valid split without tags",
                "valid",
                vec![],
                vec![tt("", "foo", "", None, Some(90)), tt("", "bar", "", None, Some(10))],
                "",
            ),
            (
                "invalid traffic entry (missing oneof)",
                "valid",
                vec![],
                vec![tt("foo", "", "", None, Some(100))],
                "expected exactly one, got neither: spec.traffic[0].configurationName, spec.traffic[0].revisionName",
            ),
            (
                "invalid traffic entry (multiple names)",
                "valid",
                vec![],
                vec![tt("foo", "bar", "", None, Some(50)), tt("foo", "bar", "", None, Some(50))],
                r#"Multiple definitions for "foo": spec.traffic[0].tag, spec.traffic[1].tag"#,
            ),
            (
                "invalid name - dots",
                "do.not.use.dots",
                vec![],
                vec![tt("", "foo", "", None, Some(100))],
                &dots,
            ),
            (
                // Sorted by message: 'T' (0x54) before 'n' (0x6e).
                "invalid name - dots and spec percent is not 100",
                "do.not.use.dots",
                vec![],
                vec![tt("", "foo", "", None, Some(90))],
                &dots_and_90,
            ),
            (
                "invalid name - too long",
                &long_name,
                vec![],
                vec![tt("", "foo", "", None, Some(100))],
                "not a DNS 1035 label: [must be no more than 63 characters]: metadata.name",
            ),
            (
                "invalid tag (routing.md C9: tag foo@)",
                "valid",
                vec![],
                vec![tt("foo@", "bar", "", None, Some(100))],
                &bad_tag,
            ),
            (
                "invalid rollout duration annotation (routing.md C9)",
                "valid",
                vec![(ROLLOUT_DURATION_KEY, "three hours and seventeen seconds")],
                vec![tt("", "foo", "", None, Some(100))],
                "invalid value: three hours and seventeen seconds: metadata.annotations.serving.knative.dev/rollout-duration",
            ),
            (
                "legacy annotation key is the reported path",
                "valid",
                vec![(ROLLOUT_DURATION_LEGACY_KEY, "1.5s")],
                vec![tt("", "foo", "", None, Some(100))],
                "rollout-duration=1.5s is not at second precision: metadata.annotations.serving.knative.dev/rolloutDuration",
            ),
            (
                "empty route traffic sums to 0",
                "valid",
                vec![],
                vec![],
                "Traffic targets sum to 0, want 100: spec.traffic",
            ),
        ];
        for (name, obj_name, annotations, traffic, want) in cases {
            let got = validate_route(&meta(obj_name, &annotations), &traffic);
            assert_eq!(got.error_string(), want, "{name}");
            assert_eq!(got.is_none(), want.is_empty(), "{name}");
        }
    }

    #[test]
    fn status_traffic_needs_urls() {
        // TestRouteValidation "missing url in status": upstream's Route.Validate once walked
        // status.traffic too; the same rule through the list validator in status context.
        let status = vec![tt("bar", "foo", "", None, Some(100))];
        let got = validate_traffic_list(&status, STATUS)
            .via_field("traffic")
            .via_field("status");
        assert_eq!(
            got.error_string(),
            "missing field(s): status.traffic[0].url"
        );
        let fine = vec![with_url(
            tt("bar", "foo", "", None, Some(100)),
            "http://bar.blah.com",
        )];
        assert_eq!(validate_traffic_list(&fine, STATUS), None);
    }

    #[test]
    fn traffic_list_paths_are_relative_to_the_list() {
        // validateTrafficList on its own: the caller adds `traffic`.
        let traffic = vec![
            tt("x@", "a", "", None, Some(60)),
            tt("x@", "", "", None, Some(30)),
        ];
        let got = validate_traffic_list(&traffic, SPEC);
        assert_eq!(
            got.error_string(),
            format!(
                "Multiple definitions for \"x@\": [0].tag, [1].tag\n\
                 Traffic targets sum to 90, want 100: \n\
                 expected exactly one, got neither: [1].configurationName, [1].revisionName\n\
                 invalid value: not a DNS 1035 label: [{DNS1035_MSG}]: tag[0], tag[1]"
            )
        );
    }

    #[test]
    fn test_service_validation() {
        // TestServiceValidation (service_validation_test.go) rows that touch routing; routing.md
        // C9 Service rows. (subtest, name, annotations, spec traffic, want; "" = valid).
        let cases: Vec<ObjectRow> = vec![
            ("valid run latest", "valid", vec![], vec![tt("", "", "", Some(true), Some(100))], ""),
            (
                "valid release",
                "valid",
                vec![],
                vec![
                    tt("current", "valid-00001", "", Some(false), Some(98)),
                    tt("candidate", "valid-00002", "", Some(false), Some(2)),
                    tt("latest", "", "", Some(true), None),
                ],
                "",
            ),
            (
                "invalid configurationName",
                "valid",
                vec![],
                vec![tt("", "", "valid", Some(true), Some(100))],
                "must not set the field(s): spec.traffic[0].configurationName",
            ),
            (
                "invalid latestRevision",
                "valid",
                vec![],
                vec![tt("", "valid", "", Some(true), Some(100))],
                r#"may not set revisionName "valid" when latestRevision is true: spec.traffic[0].latestRevision"#,
            ),
            (
                "invalid rollout duration",
                "rollout-duration-annotation",
                vec![(ROLLOUT_DURATION_KEY, "CLXXXIIIs")],
                vec![tt("", "", "", Some(true), Some(100))],
                "invalid value: CLXXXIIIs: metadata.annotations.serving.knative.dev/rollout-duration",
            ),
            (
                "invalid name",
                "",
                vec![],
                vec![tt("", "", "", Some(true), Some(100))],
                "name or generateName is required: metadata.name",
            ),
        ];
        for (name, obj_name, annotations, traffic, want) in cases {
            let got = validate_service(&meta(obj_name, &annotations), &traffic);
            assert_eq!(got.error_string(), want, "{name}");
            assert_eq!(got.is_none(), want.is_empty(), "{name}");
        }
    }

    #[test]
    fn service_traffic_must_be_defaulted_first() {
        // Knative validates the defaulted Service: an absent traffic block becomes
        // [{latestRevision: true, percent: 100}] and is valid.
        let m = meta("hello", &[]);
        let mut traffic = Vec::new();
        assert_eq!(
            validate_service(&m, &traffic).error_string(),
            "Traffic targets sum to 0, want 100: spec.traffic"
        );
        default_traffic(&mut traffic, true);
        assert_eq!(validate_service(&m, &traffic), None);
    }

    #[test]
    fn route_vectors_give_the_same_result_after_defaulting() {
        // The C9 Route vectors leave latestRevision unset; defaulting sets it to
        // revisionName == "", which never contradicts the pin, and nil percents become 0,
        // which neither the bounds nor the sum notice. So the upstream strings also hold for
        // the defaulted objects splitlab validates.
        let vectors: Vec<(Vec<TrafficTarget>, &str)> = vec![
            (
                vec![tt("foo", "", "", None, Some(100))],
                "expected exactly one, got neither: spec.traffic[0].configurationName, spec.traffic[0].revisionName",
            ),
            (
                vec![tt("foo", "bar", "", None, Some(50)), tt("foo", "bar", "", None, Some(50))],
                r#"Multiple definitions for "foo": spec.traffic[0].tag, spec.traffic[1].tag"#,
            ),
            (
                vec![tt("prod", "foo", "", None, Some(90)), tt("experiment", "", "bar", None, Some(10))],
                "",
            ),
        ];
        for (mut traffic, want) in vectors {
            default_traffic(&mut traffic, false);
            assert_eq!(
                validate_route(&meta("valid", &[]), &traffic).error_string(),
                want
            );
        }
    }

    #[test]
    fn test_validate_rollout_duration_annotation() {
        // TestValidateRolloutDurationAnnotation (metadata_validation_test.go:452-493):
        // (value, want; "" = valid), under serving.knative.dev/rollout-duration.
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("120s", ""),
            ("3h15m21s", ""),
            (
                "120000000000",
                "invalid value: 120000000000: serving.knative.dev/rollout-duration",
            ),
            (
                "five minutes and 6 seconds",
                "invalid value: five minutes and 6 seconds: serving.knative.dev/rollout-duration",
            ),
            (
                "-211s",
                "rollout-duration=-211s must be positive: serving.knative.dev/rollout-duration",
            ),
            (
                "211s44ms",
                "rollout-duration=211s44ms is not at second precision: serving.knative.dev/rollout-duration",
            ),
            // 0 is allowed, in any spelling
            ("0", ""),
            ("0s", ""),
            ("-0s", ""),
            // whole seconds written with a fraction are fine; the check is on the value
            ("1.000s", ""),
            ("1500ms", "rollout-duration=1500ms is not at second precision: serving.knative.dev/rollout-duration"),
        ];
        for &(value, want) in cases {
            let got =
                validate_rollout_duration_annotation(&annos(&[(ROLLOUT_DURATION_KEY, value)]));
            assert_eq!(got.error_string(), want, "{value:?}");
        }
    }

    #[test]
    fn annotation_key_priority_first_present_wins() {
        // kmap.KeyPriority.Get: (annotations, want validation, want RolloutDuration secs)
        let cases: Vec<(Pairs, &str, i64)> = vec![
            // no annotation at all
            (vec![], "", 0),
            // only the legacy key
            (vec![(ROLLOUT_DURATION_LEGACY_KEY, "90s")], "", 90),
            (
                vec![(ROLLOUT_DURATION_LEGACY_KEY, "soon")],
                "invalid value: soon: serving.knative.dev/rolloutDuration",
                0,
            ),
            // both: the new key wins
            (
                vec![
                    (ROLLOUT_DURATION_KEY, "60s"),
                    (ROLLOUT_DURATION_LEGACY_KEY, "soon"),
                ],
                "",
                60,
            ),
            // the new key wins even when empty: the legacy value is neither checked nor used
            (
                vec![
                    (ROLLOUT_DURATION_KEY, ""),
                    (ROLLOUT_DURATION_LEGACY_KEY, "soon"),
                ],
                "",
                0,
            ),
            (
                vec![
                    (ROLLOUT_DURATION_KEY, ""),
                    (ROLLOUT_DURATION_LEGACY_KEY, "90s"),
                ],
                "",
                0,
            ),
        ];
        for (pairs, want, want_secs) in cases {
            let a = annos(&pairs);
            assert_eq!(
                validate_rollout_duration_annotation(&a).error_string(),
                want,
                "{pairs:?}"
            );
            assert_eq!(rollout_duration(&a), want_secs * SECOND, "{pairs:?}");
        }
    }

    #[test]
    fn test_rollout_duration() {
        // TestRolloutDuration (route_lifecycle_test.go:587-618): (value, want ns).
        let cases: &[(&str, i64)] = &[("", 0), ("not-a-duration", 0), ("2m1982s", 2102 * SECOND)];
        for &(value, want) in cases {
            assert_eq!(
                rollout_duration(&annos(&[(ROLLOUT_DURATION_KEY, value)])),
                want,
                "{value:?}"
            );
        }
    }

    #[test]
    fn reconciler_rollout_secs_truncates_and_falls_back() {
        // reconcileRollout (routing.md A4, A13, d.10): (annotation, config-network secs, want).
        let cases: &[(Option<&str>, i64, i64)] = &[
            // no annotation: config-network
            (None, 120, 120),
            (None, 0, 0),
            // annotation wins
            (Some("380s"), 120, 380),
            (Some("2m1982s"), 0, 2102),
            // truncation toward zero of Seconds()
            (Some("1.9s"), 120, 1),
            (Some("-1.9s"), 120, -1),
            // 0s (or anything under a second) falls back: no per-route opt-out (d.10)
            (Some("0s"), 120, 120),
            (Some("999ms"), 120, 120),
            // unparseable counts as 0 and falls back
            (Some("later"), 45, 45),
            // negative stays negative: rollout disabled, no fallback
            (Some("-211s"), 120, -211),
        ];
        for &(value, cn, want) in cases {
            let a = match value {
                Some(v) => annos(&[(ROLLOUT_DURATION_KEY, v)]),
                None => BTreeMap::new(),
            };
            assert_eq!(reconciler_rollout_secs(&a, cn), want, "{value:?} {cn}");
        }
    }

    #[test]
    fn test_config_network_rollout_duration() {
        // networking pkg/config/config_test.go rollout-duration rows, plus Atoi edge cases:
        // (data, want).
        let cases: Vec<(Pairs, Result<i64, &str>)> = vec![
            // default
            (vec![], Ok(0)),
            // "rollout-duration: 211"
            (vec![("rollout-duration", "211")], Ok(211)),
            // a non-number
            (
                vec![("rollout-duration", "mil")],
                Err(
                    r#"failed to parse "rollout-duration": strconv.Atoi: parsing "mil": invalid syntax"#,
                ),
            ),
            // "-444"
            (
                vec![("rollout-duration", "-444")],
                Err("rollout-duration must be a positive integer, but was -444"),
            ),
            // legacy "rolloutDuration: 5"
            (vec![("rolloutDuration", "5")], Ok(5)),
            // legacy 5 plus new 11
            (
                vec![("rolloutDuration", "5"), ("rollout-duration", "11")],
                Ok(11),
            ),
            // Go duration text is not accepted here (routing.md d.11)
            (
                vec![("rollout-duration", "380s")],
                Err(
                    r#"failed to parse "rollout-duration": strconv.Atoi: parsing "380s": invalid syntax"#,
                ),
            ),
            // a bad legacy value fails the whole config even when the new key is fine
            (
                vec![("rolloutDuration", "x"), ("rollout-duration", "11")],
                Err(
                    r#"failed to parse "rolloutDuration": strconv.Atoi: parsing "x": invalid syntax"#,
                ),
            ),
            // a negative legacy value overridden by a valid new one is fine
            (
                vec![("rolloutDuration", "-5"), ("rollout-duration", "0")],
                Ok(0),
            ),
            (vec![("rollout-duration", "+7")], Ok(7)),
            (
                vec![("rollout-duration", "")],
                Err(
                    r#"failed to parse "rollout-duration": strconv.Atoi: parsing "": invalid syntax"#,
                ),
            ),
            (
                vec![("rollout-duration", " 5")],
                Err(
                    r#"failed to parse "rollout-duration": strconv.Atoi: parsing " 5": invalid syntax"#,
                ),
            ),
            (
                vec![("rollout-duration", "1_000")],
                Err(
                    r#"failed to parse "rollout-duration": strconv.Atoi: parsing "1_000": invalid syntax"#,
                ),
            ),
            (
                vec![("rollout-duration", "9223372036854775808")],
                Err(
                    r#"failed to parse "rollout-duration": strconv.Atoi: parsing "9223372036854775808": value out of range"#,
                ),
            ),
            (
                vec![("rollout-duration", "99999999999999999999x")],
                Err(
                    r#"failed to parse "rollout-duration": strconv.Atoi: parsing "99999999999999999999x": value out of range"#,
                ),
            ),
            (
                vec![("rollout-duration", "-9223372036854775808")],
                Err("rollout-duration must be a positive integer, but was -9223372036854775808"),
            ),
        ];
        for (pairs, want) in cases {
            let got = parse_config_network_rollout_duration(&annos(&pairs));
            assert_eq!(got, want.map_err(str::to_string), "{pairs:?}");
        }
    }

    #[test]
    fn dns1035_label_messages() {
        // (input, want messages)
        let too_long = "a".repeat(64);
        let too_long_bad = format!("{}-", "a".repeat(63));
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("a", vec![]),
            ("my-name", vec![]),
            ("abc-123", vec![]),
            (&too_long[..63], vec![]),
            ("", vec![DNS1035_MSG]),
            ("1abc", vec![DNS1035_MSG]),
            ("abc-", vec![DNS1035_MSG]),
            ("Abc", vec![DNS1035_MSG]),
            ("do.not.use.dots", vec![DNS1035_MSG]),
            ("foo@", vec![DNS1035_MSG]),
            ("abc\n", vec![DNS1035_MSG]),
            (&too_long, vec!["must be no more than 63 characters"]),
            (
                &too_long_bad,
                vec!["must be no more than 63 characters", DNS1035_MSG],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1035_label(input), want, "{input:?}");
        }
    }

    #[test]
    fn qualified_name_messages() {
        const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
        let long = "a".repeat(64);
        let prefixed_long = format!("example.com/{long}");
        let prefix_bad = format!("prefix part {SUBDOMAIN}");
        let too_many = format!(
            "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            &QNAME_DETAILS["name part ".len()..]
        );
        // (input, want messages)
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("MyName", vec![]),
            ("my.name", vec![]),
            ("123-abc", vec![]),
            ("a", vec![]),
            ("hello-00001", vec![]),
            ("example.com/MyName", vec![]),
            ("b ar", vec![QNAME_DETAILS]),
            ("-a", vec![QNAME_DETAILS]),
            ("a_", vec![QNAME_DETAILS]),
            ("", vec!["name part must be non-empty", QNAME_DETAILS]),
            (&long, vec!["name part must be no more than 63 characters"]),
            (
                &prefixed_long,
                vec!["name part must be no more than 63 characters"],
            ),
            ("/a", vec!["prefix part must be non-empty"]),
            ("Example.com/a", vec![&prefix_bad]),
            (
                "example.com/",
                vec!["name part must be non-empty", QNAME_DETAILS],
            ),
            ("a/b/c", vec![&too_many]),
        ];
        for (input, want) in cases {
            assert_eq!(is_qualified_name(input), want, "{input:?}");
        }
    }

    /// A deliberately different reference for the DNS-1035 rule: a tiny state machine over the
    /// regex `[a-z]([-a-z0-9]*[a-z0-9])?`, plus the length limit.
    fn reference_dns1035(s: &str) -> bool {
        // states: 0 start, 1 after a letter/digit (accepting), 2 after '-' (not accepting)
        let mut state = 0;
        for c in s.chars() {
            state = match (state, c) {
                (0, 'a'..='z') => 1,
                (1 | 2, 'a'..='z' | '0'..='9') => 1,
                (1 | 2, '-') => 2,
                _ => return false,
            };
        }
        state == 1 && s.len() <= 63
    }

    proptest! {
        /// is_dns1035_label agrees with the reference on short random strings.
        #[test]
        fn dns1035_agrees_with_reference(s in "[a-z0-9A-Z.@-]{0,8}|[a-z-]{60,66}|\\PC{0,6}") {
            prop_assert_eq!(is_dns1035_label(&s).is_empty(), reference_dns1035(&s));
        }

        /// Defaulting never changes a validation result for Routes (so upstream's undefaulted
        /// test vectors and splitlab's defaulted objects agree), and no input panics.
        #[test]
        fn route_validation_is_invariant_under_defaulting(
            targets in proptest::collection::vec(
                (
                    prop_oneof![Just(""), Just("a"), Just("b"), Just("B@")],
                    prop_oneof![Just(""), Just("r1"), Just("b ar")],
                    prop_oneof![Just(""), Just("c1")],
                    proptest::option::of(any::<bool>()),
                    proptest::option::of(prop_oneof![Just(-1i64), Just(0), Just(50), Just(100), Just(101), any::<i64>()]),
                    proptest::option::of(prop_oneof![Just(""), Just("http://x")]),
                ),
                0..4,
            )
        ) {
            let mut traffic: Vec<TrafficTarget> = targets
                .into_iter()
                .map(|(tag, rev, cfg, latest, pct, url)| TrafficTarget {
                    url: url.map(str::to_string),
                    ..tt(tag, rev, cfg, latest, pct)
                })
                .collect();
            let m = meta("valid", &[]);
            let before = validate_route(&m, &traffic).error_string();
            default_traffic(&mut traffic, false);
            prop_assert_eq!(before, validate_route(&m, &traffic).error_string());
        }
    }

    #[test]
    fn dns1123_label_messages_are_apimachinerys() {
        // (input, reasons): IsDNS1123Label's exact texts
        let regex = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
        let long = "a".repeat(64);
        let cases: Vec<(&str, Vec<&str>)> = vec![
            // a valid label, digits first allowed (unlike DNS-1035)
            ("1abc-9", vec![]),
            // upper case
            ("Abc", vec![regex]),
            // a trailing dash
            ("abc-", vec![regex]),
            // too long but well-formed
            (&long, vec!["must be no more than 63 characters"]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1123_label(input), want, "{input:?}");
        }
    }
}
