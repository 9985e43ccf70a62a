//! Test helpers: a clock tests move by hand, and a strict reader of the
//! Prometheus text format (0.0.4), so tests check the exposition as
//! Prometheus would read it instead of matching strings.
//!
//! The rules are those of the format's specification
//! (prometheus/docs content/docs/instrumenting/exposition_formats.md) and
//! of the Go parser's checks (prometheus/common expfmt/text_parse.go):
//! `# HELP` / `# TYPE` before the family's samples, one TYPE per name, the
//! samples of a family together, histogram samples only as `_bucket` (with
//! `le`), `_sum` and `_count`, no label twice, no series twice, and the
//! escapes `\\`, `\"` and `\n` in label values.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicU64, Ordering},
};

use super::Clock;

/// A clock that stays where a test puts it.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn at(unix_seconds: f64) -> ManualClock {
        ManualClock(AtomicU64::new(unix_seconds.to_bits()))
    }

    pub fn set(&self, unix_seconds: f64) {
        self.0.store(unix_seconds.to_bits(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_seconds(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::SeqCst))
    }
}

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub help: Option<String>,
    pub kind: String,
    pub samples: Vec<Sample>,
}

/// Parses a whole exposition; the error names the line.
pub fn parse(text: &str) -> Result<Vec<MetricFamily>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line does not end with a line feed".into());
    }
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut typed = BTreeSet::new();
    let mut helped = BTreeSet::new();
    let mut series = BTreeSet::new();
    let mut closed = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix('#') {
            let mut words = rest.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), help) => {
                    check_metric_name(name).map_err(at)?;
                    if !helped.insert(name.to_owned()) {
                        return Err(at("a second HELP".into()));
                    }
                    let family = family_for(&mut families, &mut closed, name).map_err(at)?;
                    family.help = Some(unescape_help(help.unwrap_or("")));
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    check_metric_name(name).map_err(at)?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if !typed.insert(name.to_owned()) {
                        return Err(at("a second TYPE".into()));
                    }
                    let family = family_for(&mut families, &mut closed, name).map_err(at)?;
                    if !family.samples.is_empty() {
                        return Err(at("TYPE after the family's samples".into()));
                    }
                    family.kind = kind.to_owned();
                }
                _ => {} // any other comment
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family_name = families
            .last()
            .filter(|f| belongs(f, &sample))
            .map(|f| f.name.clone())
            .unwrap_or_else(|| sample.name.clone());
        let family = family_for(&mut families, &mut closed, &family_name).map_err(at)?;
        if !belongs(family, &sample) {
            return Err(at(format!("sample does not belong to the {} family {}", family.kind, family.name)));
        }
        if family.kind == "histogram" && sample.name.ends_with("_bucket") && !sample.labels.contains_key("le")
        {
            return Err(at("histogram bucket without le".into()));
        }
        if !series.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(at("the same series twice".into()));
        }
        family.samples.push(sample);
    }
    for f in families.iter().filter(|f| f.kind == "histogram") {
        check_histogram(f)?;
    }
    Ok(families)
}

/// The family `name`, opened if new; a family seen before, then left,
/// cannot be reopened (its samples must be together).
fn family_for<'a>(
    families: &'a mut Vec<MetricFamily>,
    closed: &mut BTreeSet<String>,
    name: &str,
) -> Result<&'a mut MetricFamily, String> {
    if families.last().is_some_and(|f| f.name == name) {
        return Ok(families.last_mut().expect("checked just above"));
    }
    if closed.contains(name) {
        return Err(format!("family {name} continues after another family"));
    }
    if let Some(last) = families.last() {
        closed.insert(last.name.clone());
    }
    families.push(MetricFamily {
        name: name.to_owned(),
        help: None,
        kind: "untyped".into(),
        samples: Vec::new(),
    });
    Ok(families.last_mut().expect("pushed just above"))
}

fn belongs(family: &MetricFamily, sample: &Sample) -> bool {
    if family.kind == "histogram" {
        ["_bucket", "_sum", "_count"].iter().any(|s| sample.name == format!("{}{s}", family.name))
    } else {
        sample.name == family.name
    }
}

fn check_histogram(f: &MetricFamily) -> Result<(), String> {
    let mut by_labels: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for s in &f.samples {
        let mut labels = s.labels.clone();
        if s.name.ends_with("_bucket") {
            let le = labels.remove("le").expect("checked while parsing");
            let le = parse_value(&le).map_err(|e| format!("{}: le: {e}", f.name))?;
            by_labels.entry(labels).or_default().push((le, s.value));
        } else if s.name.ends_with("_count") {
            counts.insert(labels, s.value);
        }
    }
    for (labels, buckets) in by_labels {
        let inf = buckets.iter().find(|(le, _)| *le == f64::INFINITY);
        let Some(&(_, inf)) = inf else {
            return Err(format!("{} {labels:?}: no +Inf bucket", f.name));
        };
        if counts.get(&labels) != Some(&inf) {
            return Err(format!("{} {labels:?}: +Inf bucket is not _count", f.name));
        }
        if buckets.windows(2).any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1) {
            return Err(format!("{} {labels:?}: buckets not ascending and cumulative", f.name));
        }
    }
    Ok(())
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !ok {
        return Err(format!("bad metric name {name:?}"));
    }
    Ok(())
}

fn check_label_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !ok || name.starts_with("__") {
        return Err(format!("bad label name {name:?}"));
    }
    Ok(())
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = r.strip_prefix('}') {
                r = after;
                break;
            }
            let eq = r.find('=').ok_or("label without =")?;
            let label = &r[..eq];
            check_label_name(label)?;
            let mut chars = r[eq + 1..].char_indices();
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((i, '"')) => break eq + 1 + i + 1,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} twice"));
            }
            r = &r[end..];
            r = r.strip_prefix(',').unwrap_or(r);
        }
        rest = r;
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample { name: name.to_owned(), labels, value })
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

fn unescape_help(text: &str) -> String {
    text.replace("\\n", "\n").replace("\\\\", "\\")
}

/// The family `name`, which must be there.
pub fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name} in {families:#?}"))
}

/// Label pairs as a map, for comparing with a sample's.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_valid_exposition() {
        let text = "# HELP a_total Help \\\\ with\\nlines.\n# TYPE a_total counter\n\
                    a_total{x=\"q\\\"uote\\\\d\\n\",y=\"\"} 3\na_total 1.5e3 1700000000000\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
        let f = parse(text).expect("valid");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].help.as_deref(), Some("Help \\ with\nlines."));
        assert_eq!(f[0].samples[0].labels, labels(&[("x", "q\"uote\\d\n"), ("y", "")]));
        assert_eq!(f[0].samples[1].value, 1500.0);
        assert_eq!(f[1].kind, "histogram");
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        for bad in [
            "a 1",                                                                            // no final line feed
            "a{x=\"1\",x=\"2\"} 1\n",                                                         // label twice
            "a{x=\"1} 1\n",                                                                   // unterminated
            "a{x=1} 1\n",                                                                     // unquoted
            "a{__x=\"1\"} 1\n",                   // reserved label name
            "a one\n",                            // bad value
            "a 1\na 1\n",                         // series twice
            "a 1\nb 1\na 2\n",                    // family split
            "a 1\n# TYPE a counter\n",            // TYPE after samples
            "# TYPE a counter\n# TYPE a gauge\n", // TYPE twice
            "# TYPE a nonsense\n",                // unknown type
            "# TYPE h histogram\nh_bucket 1\n",   // bucket without le
            "# TYPE h histogram\nh 1\n",          // not a histogram sample
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n",                       // +Inf != count
            "1a 1\n",                                                                         // bad name
            "a{x=\"\\t\"} 1\n",                                                               // bad escape
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
