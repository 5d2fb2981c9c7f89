//! Host names of a route and its tags: Knative's domain and tag templates and the FQDN check.
//!
//! Mirrors serving `pkg/reconciler/route/domains/domains.go` (HostnameFromTemplate,
//! DomainNameFromTemplate, the cluster-local host expansion) and networking `config.go`
//! (defaults `{{.Name}}.{{.Namespace}}.{{.Domain}}` and `{{.Tag}}-{{.Name}}`), with
//! k8s apimachinery's `IsFullyQualifiedDomainName` for the "domain name error" of routing.md C6.
//!
//! Templates: Go templates upstream; here the field substitutions Knative documents
//! (`{{.Name}}`, `{{.Namespace}}`, `{{.Domain}}`, `{{.Tag}}`, spaces inside the braces allowed).
//! Anything else is rejected with a clear error rather than guessed at.

use std::fmt;

use super::validation::{is_dns1123_label, is_dns1123_subdomain};

/// Knative's default domain template (networking `config.go:56`).
pub const DEFAULT_DOMAIN_TEMPLATE: &str = "{{.Name}}.{{.Namespace}}.{{.Domain}}";
/// Knative's default tag template (networking `config.go:60`).
pub const DEFAULT_TAG_TEMPLATE: &str = "{{.Tag}}-{{.Name}}";

/// How hosts are named: config-domain and config-network settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// The external domain suffix (config-domain), e.g. `example.com`.
    pub domain: String,
    pub domain_template: String,
    pub tag_template: String,
    /// `default-external-scheme` (config-network).
    pub external_scheme: String,
    /// The cluster's DNS domain, for cluster-local hosts.
    pub cluster_domain: String,
}

impl Default for DomainConfig {
    fn default() -> Self {
        DomainConfig {
            domain: "example.com".to_string(),
            domain_template: DEFAULT_DOMAIN_TEMPLATE.to_string(),
            tag_template: DEFAULT_TAG_TEMPLATE.to_string(),
            external_scheme: "http".to_string(),
            cluster_domain: "cluster.local".to_string(),
        }
    }
}

/// A host could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The template uses something other than the supported field substitutions.
    Template { template: String, reason: String },
    /// The result is not a valid FQDN; `detail` is apimachinery's aggregate message.
    DomainName { domain: String, detail: String },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Template { template, reason } => {
                write!(f, "error executing the template {template:?}: {reason}")
            }
            // RG: the route reconciler prefixes "domain name error: " (routing.md C6).
            HostError::DomainName { domain, detail } => {
                write!(
                    f,
                    "domain name error: invalid domain name {domain:?}: {detail}"
                )
            }
        }
    }
}

impl std::error::Error for HostError {}

/// Template data: the fields a Knative template may name.
struct TemplateData<'a> {
    name: &'a str,
    namespace: &'a str,
    domain: &'a str,
    tag: &'a str,
}

fn execute(template: &str, data: &TemplateData<'_>) -> Result<String, HostError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| HostError::Template {
            template: template.to_string(),
            reason: "unclosed action".to_string(),
        })?;
        let value = match after[..end].trim() {
            ".Name" => data.name,
            ".Namespace" => data.namespace,
            ".Domain" => data.domain,
            ".Tag" => data.tag,
            other => {
                return Err(HostError::Template {
                    template: template.to_string(),
                    reason: format!(
                        "unsupported action {other:?}; allowed: .Name, .Namespace, .Domain, .Tag"
                    ),
                })
            }
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl DomainConfig {
    /// `HostnameFromTemplate`: the route name for the default group, else the tag template.
    pub fn hostname(&self, route: &str, tag: &str) -> Result<String, HostError> {
        if tag.is_empty() {
            return Ok(route.to_string());
        }
        execute(
            &self.tag_template,
            &TemplateData {
                name: route,
                namespace: "",
                domain: "",
                tag,
            },
        )
    }

    /// `DomainNameFromTemplate` for external visibility: the domain template applied to the
    /// hostname, then checked as an FQDN.
    pub fn external_host(
        &self,
        route: &str,
        namespace: &str,
        tag: &str,
    ) -> Result<String, HostError> {
        let hostname = self.hostname(route, tag)?;
        let data = TemplateData {
            name: &hostname,
            namespace,
            domain: &self.domain,
            tag,
        };
        let domain = execute(&self.domain_template, &data)?;
        check_fqdn(&domain)?;
        Ok(domain)
    }

    /// Cluster-local hosts: the default template with `svc.<cluster-domain>`, expanded to
    /// `{h.ns, h.ns.svc, h.ns.svc.<cluster-domain>}` (domains.go:77-142, networking
    /// `ingress.go:93`), sorted.
    pub fn cluster_local_hosts(
        &self,
        route: &str,
        namespace: &str,
        tag: &str,
    ) -> Result<Vec<String>, HostError> {
        let hostname = self.hostname(route, tag)?;
        let base = format!("{hostname}.{namespace}");
        let full = format!("{base}.svc.{}", self.cluster_domain);
        check_fqdn(&full)?;
        let mut hosts = vec![base.clone(), format!("{base}.svc"), full];
        hosts.sort();
        Ok(hosts)
    }

    /// The URL of a tagged target in `status.traffic` (TR:97-119).
    pub fn tag_url(&self, route: &str, namespace: &str, tag: &str) -> Result<String, HostError> {
        Ok(format!(
            "{}://{}",
            self.external_scheme,
            self.external_host(route, namespace, tag)?
        ))
    }
}

/// apimachinery `IsFullyQualifiedDomainName(field.NewPath("url"), name)`, as one aggregate
/// message (`url: Invalid value: "<v>": <msg>`, several joined as `[a, b]`).
fn check_fqdn(name: &str) -> Result<(), HostError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let invalid = |value: &str, msg: &str| format!("url: Invalid value: {value:?}: {msg}");
    let mut errors: Vec<String> = Vec::new();
    if trimmed.is_empty() {
        errors.push("url: Required value".to_string());
    } else {
        // IsDNS1123Subdomain first, then at least two labels, each IsDNS1123Label.
        errors.extend(
            is_dns1123_subdomain(trimmed)
                .iter()
                .map(|m| invalid(trimmed, m)),
        );
        if errors.is_empty() {
            let labels: Vec<&str> = trimmed.split('.').collect();
            if labels.len() < 2 {
                errors.push(invalid(
                    trimmed,
                    "should be a domain with at least two segments separated by dots",
                ));
            }
            for label in labels {
                errors.extend(is_dns1123_label(label).iter().map(|m| invalid(label, m)));
            }
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(HostError::DomainName {
            domain: name.to_string(),
            detail: errors.remove(0),
        }),
        _ => Err(HostError::DomainName {
            domain: name.to_string(),
            detail: format!("[{}]", errors.join(", ")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_templates() {
        let dc = DomainConfig::default();
        // (route, namespace, tag, external host)
        let cases = [
            // the default group: {route}.{ns}.{domain}
            (
                "test-route",
                "test-ns",
                "",
                "test-route.test-ns.example.com",
            ),
            // a tag: {tag}-{route}.{ns}.{domain}
            (
                "test-route",
                "test-ns",
                "v1",
                "v1-test-route.test-ns.example.com",
            ),
        ];
        for (route, ns, tag, want) in cases {
            assert_eq!(dc.external_host(route, ns, tag).expect("valid"), want);
        }
        assert_eq!(
            dc.cluster_local_hosts("test-route", "test-ns", "")
                .expect("valid"),
            vec![
                "test-route.test-ns",
                "test-route.test-ns.svc",
                "test-route.test-ns.svc.cluster.local"
            ]
        );
        assert_eq!(
            dc.tag_url("test-route", "test", "beta").expect("valid"),
            "http://beta-test-route.test.example.com"
        );
    }

    #[test]
    fn custom_templates() {
        let dc = DomainConfig {
            domain: "apps.internal".into(),
            domain_template: "{{ .Name }}-{{.Namespace}}.{{.Domain}}".into(),
            tag_template: "{{.Name}}-{{.Tag}}".into(),
            ..Default::default()
        };
        assert_eq!(
            dc.external_host("hello", "prod", "canary").expect("valid"),
            "hello-canary-prod.apps.internal"
        );
        let bad = DomainConfig {
            domain_template: "{{.Name}}.{{.Labels}}".into(),
            ..Default::default()
        };
        let err = bad
            .external_host("hello", "prod", "")
            .expect_err("unsupported");
        assert!(
            err.to_string().contains("unsupported action \".Labels\""),
            "{err}"
        );
    }

    #[test]
    fn long_route_name_is_a_domain_name_error() {
        // routing.md C6 "invalid URL propagates updates route status" (TBL:2025-2053)
        let name = "a".repeat(71);
        let err = DomainConfig::default()
            .external_host(&name, "default", "")
            .expect_err("too long");
        assert_eq!(
            err.to_string(),
            format!(
                "domain name error: invalid domain name \"{name}.default.example.com\": url: Invalid value: \"{name}\": must be no more than 63 characters"
            )
        );
    }

    #[test]
    fn uppercase_is_not_a_dns_label() {
        let err = DomainConfig::default()
            .external_host("Hello", "default", "")
            .expect_err("upper case");
        assert!(err.to_string().contains("RFC 1123 subdomain"), "{err}");
    }
}
