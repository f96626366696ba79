//! Which hosts a templated URL may name: an event's values may change a URL's path and
//! query, and the parts of its host that the template leaves to Liquid, but not the
//! host the template writes out.
//!
//! `https://api.example.com{{ data.path }}` reads as a path after a host; with
//! `data.path` = `.evil.com/x` it renders `https://api.example.com.evil.com/x`, a public
//! host the SSRF guard lets through, and the webhook's body, signature and credentials
//! go to whoever owns it. Event data often carries what end users typed, so the host's
//! literal text is kept: Liquid at the end of a host written out adds nothing to it (a
//! value there must begin the port or the path, `:` `/` `?` `#`; even letters would
//! move it, `example.com` + `munity` being another registrable domain), and Liquid
//! between literal parts (`https://{{ data.tenant }}.example.com/`) may name any host
//! that begins and ends with those parts. A URL whose host the text fixes
//! (`https://api.example.com/{{ … }}`) has nothing to check; one whose host is all
//! Liquid (`https://{{ data.host }}/`, `{{ data.url }}`) was made so on purpose.
//!
//! Only text outside blocks counts as written out: what `{% if %}` or `{% for %}` print
//! depends on the event. A written part that plainly goes on in Liquid (`api.` before
//! `{{ data.domain }}`, a lone `.` between two outputs) is a beginning, or nothing, not
//! a host: the template left the rest to the event.

use super::limits::{BLOCK_TAGS, markup, tag_name};

/// The literal parts of a template's host that every rendering must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostRule {
    /// The host's literal beginning, when Liquid does not begin it.
    starts: Option<String>,
    /// The host's last literal part, unless it plainly goes on in Liquid (`api.` before
    /// `{{ data.domain }}`: the template leaves the domain to the event).
    ends: Option<String>,
    /// Whether `ends` is all the host the template writes out (no Liquid before it
    /// within the host): then it is the host.
    whole: bool,
    /// Whether Liquid follows `ends` within the host (and must add nothing to it).
    open_end: bool,
}

/// A template as its output is certain to read: text outside blocks, and gaps where
/// markup prints something unknown (perhaps nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Gap,
}

/// Adds text to `out`: as it reads when it is certain to be printed, as a gap when not.
fn text<'a>(out: &mut Vec<Piece<'a>>, text: &'a str, certain: bool) {
    if text.is_empty() {
        return;
    }
    if certain {
        out.push(Piece::Text(text));
    } else if out.last() != Some(&Piece::Gap) {
        out.push(Piece::Gap);
    }
}

fn pieces(source: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    let mut at = 0;
    let mut after_raw = false;
    for m in markup(source) {
        let start = m.offset - 2;
        let certain = open.is_empty() && !after_raw;
        text(&mut out, source.get(at..start).unwrap_or_default(), certain);
        if out.last() != Some(&Piece::Gap) {
            out.push(Piece::Gap);
        }
        at = m.offset + m.inner.len() + 2;
        after_raw = false;
        if !m.tag {
            continue;
        }
        let name = tag_name(m.inner);
        if name == "raw" {
            // `markup` skips the content; it is read as unknown.
            after_raw = true;
        } else if BLOCK_TAGS.contains(&name) {
            open.push(name);
        } else if let Some(closed) = name.strip_prefix("end")
            && open.last() == Some(&closed)
        {
            open.pop();
        }
    }
    let certain = open.is_empty() && !after_raw;
    text(&mut out, source.get(at..).unwrap_or_default(), certain);
    out
}

/// Where a special URL's authority ends (`\` reads as `/` in http and https).
const AUTHORITY_ENDS: [char; 4] = ['/', '?', '#', '\\'];

impl HostRule {
    /// The rule of a URL template, or `None` when there is nothing to keep: its text
    /// fixes the host, or Liquid writes all of it (or its scheme's `://` is not text).
    pub(super) fn of(source: &str) -> Option<HostRule> {
        let pieces = pieces(source);
        // The first `/`, `?`, `#` or `\` written out must be the one of `://`.
        let (index, rest) = pieces
            .iter()
            .enumerate()
            .find_map(|(i, p)| match p {
                Piece::Text(t) => t.find(AUTHORITY_ENDS).map(|at| (i, t, at)),
                Piece::Gap => None,
            })
            .and_then(|(i, t, at)| {
                (t[..at].ends_with(':') && t[at..].starts_with("//")).then(|| (i, &t[at + 2..]))
            })?;
        let mut authority = Vec::new();
        for piece in std::iter::once(Piece::Text(rest)).chain(pieces[index + 1..].iter().copied()) {
            match piece {
                Piece::Text(t) => match t.find(AUTHORITY_ENDS) {
                    Some(end) => {
                        authority.push(Piece::Text(&t[..end]));
                        break;
                    }
                    None => authority.push(Piece::Text(t)),
                },
                Piece::Gap => authority.push(Piece::Gap),
            }
        }
        // Liquid before the `://` can print a scheme and host of its own
        // (`https://evil.com/?x=`), so the host written out after it is kept as well.
        if !authority.contains(&Piece::Gap) && !pieces[..index].contains(&Piece::Gap) {
            return None;
        }
        // Credentials are refused anyway, and a bracketed IPv6 host is not a name to
        // extend; the guard checks both.
        if authority
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if t.contains(['@', '[', ']'])))
        {
            return None;
        }
        // A `:` written out ends the host: what follows is the port.
        let mut closed = false;
        if let Some(port) = authority
            .iter()
            .position(|p| matches!(p, Piece::Text(t) if t.contains(':')))
        {
            if let Piece::Text(t) = authority[port] {
                authority[port] = Piece::Text(&t[..t.find(':').unwrap_or(t.len())]);
            }
            authority.truncate(port + 1);
            closed = true;
        }
        // Written parts that name something: a lone `.` between two outputs does not.
        let literal = |p: &Piece<'_>| match p {
            Piece::Text(t) if t.contains(|c: char| c.is_ascii_alphanumeric()) => {
                Some(t.trim().to_ascii_lowercase())
            }
            _ => None,
        };
        let last = authority.iter().rposition(|p| literal(p).is_some())?;
        let mut ends = literal(&authority[last]);
        let starts = authority.first().and_then(literal);
        let open_end = !closed && authority[last..].contains(&Piece::Gap);
        if open_end && ends.as_ref().is_some_and(|e| e.ends_with(['.', '-'])) {
            // `https://api.{{ data.domain }}`: a beginning, not a host.
            ends = None;
            starts.as_ref()?;
        }
        let whole = ends.is_some() && !authority[..last].contains(&Piece::Gap);
        Some(HostRule {
            starts,
            ends,
            whole,
            open_end,
        })
    }

    /// Whether a rendered URL's host keeps the rule.
    pub(super) fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.starts.as_ref().is_some_and(|s| !host.starts_with(s)) {
            return false;
        }
        let Some(ends) = &self.ends else {
            return true;
        };
        if self.whole {
            return host == *ends;
        }
        // Liquid before the end prints whole labels: `{{ x }}example.com` with `evil`
        // would be `evilexample.com`, another domain.
        host.strip_suffix(ends.as_str()).is_some_and(|before| {
            before.is_empty() || before.ends_with('.') || ends.starts_with('.')
        })
    }

    /// Why a host was refused, for the attempt log and a preview.
    pub(super) fn refusal(&self, host: &str) -> String {
        let mut keep = match (&self.starts, &self.ends) {
            (_, Some(e)) if self.whole => format!("the host `{e}` it writes out"),
            (Some(s), Some(e)) => format!("a host that begins with `{s}` and ends with `{e}`"),
            (None, Some(e)) => format!("a host that ends with `{e}`"),
            (Some(s), None) => format!("a host that begins with `{s}`"),
            (None, None) => "a host".to_string(),
        };
        if let (true, Some(ends)) = (self.open_end, &self.ends) {
            keep.push_str(&format!(
                ", and a value right after `{ends}` must begin the port or the path (`:`, `/`, `?` or `#`)"
            ));
        }
        format!(
            "the URL renders to the host `{host}`, but the template names {keep}: a value in the URL would send it elsewhere"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(source: &str) -> Option<HostRule> {
        HostRule::of(source)
    }

    fn allows(source: &str, host: &str) -> bool {
        rule(source).is_none_or(|r| r.allows(host))
    }

    #[test]
    fn a_host_written_out_before_any_liquid_needs_no_rule() {
        for source in [
            "https://api.example.com/u/{{ user.id }}",
            "https://api.example.com?x={{ data.x }}",
            "https://api.example.com#{{ data.x }}",
            "https://api.example.com",
            "http://api.example.com:8080/{{ data.path }}",
        ] {
            assert_eq!(rule(source), None, "{source}");
        }
    }

    #[test]
    fn a_host_all_liquid_was_made_so_on_purpose() {
        for source in [
            "{{ data.url }}",
            "{{ data.base }}/hooks",
            "https://{{ data.host }}/hooks",
            "https://{% if data.eu %}eu.example.com{% else %}us.example.com{% endif %}/h",
            "https://[{{ data.ip }}]/h",
        ] {
            assert_eq!(rule(source), None, "{source}");
        }
    }

    #[test]
    fn liquid_right_after_a_host_may_not_extend_it() {
        let source = "https://api.example.com{{ data.path }}";
        assert!(allows(source, "api.example.com"));
        assert!(allows(source, "API.Example.COM"));
        assert!(!allows(source, "api.example.com.evil.com"));
        assert!(!allows(source, "evil.com"));
        // Not even letters: `example.community` is another registrable domain.
        assert!(!allows(source, "api.example.community"));
        assert!(!allows(source, "api.example.comevilapi.example.com"));
        let why = rule(source).unwrap().refusal("api.example.com.evil.com");
        assert!(why.contains("`api.example.com.evil.com`"), "{why}");
        assert!(why.contains("must begin the port or the path"), "{why}");
    }

    #[test]
    fn liquid_between_written_parts_names_a_host_that_keeps_both() {
        let source = "https://{{ data.tenant }}.example.com/hooks";
        assert!(allows(source, "acme.example.com"));
        assert!(allows(source, "a.b.example.com"));
        assert!(!allows(source, "evil.com"));
        assert!(!allows(source, "example.com.evil.com"));
        let source = "https://api.{{ data.region }}.example.com/hooks";
        assert!(allows(source, "api.eu.example.com"));
        assert!(!allows(source, "api.evil.com"));
        assert!(!allows(source, "evil.eu.example.com"));
        // A top-level domain left to a block: the host is kept from `api.example.` on.
        let source = "https://api.example.{% if data.eu %}eu{% else %}com{% endif %}/h";
        assert!(allows(source, "api.example.com") && allows(source, "api.example.eu"));
        assert!(!allows(source, "evil.com"));
        let source = "{% if data.eu %}https://api.example.eu/h{% else %}https://api.example.com/h{% endif %}";
        assert_eq!(rule(source), None);
    }

    #[test]
    fn liquid_before_a_written_end_prints_whole_labels() {
        let source = "https://{{ data.sub }}example.com/hooks";
        assert!(allows(source, "www.example.com"));
        assert!(allows(source, "example.com"));
        assert!(!allows(source, "evilexample.com"));
        let source = "https://{{ data.sub }}.example.com/hooks";
        assert!(!allows(source, "evil.com"));
        assert!(allows(source, "a.b.example.com"));
    }

    #[test]
    fn a_host_that_plainly_goes_on_in_liquid_keeps_only_its_beginning() {
        // Two outputs around a dot: all Liquid.
        assert_eq!(rule("https://{{ data.sub }}.{{ data.domain }}/h"), None);
        // `api.` then the domain from the event: the template's choice, from `api.` on.
        let source = "https://api.{{ data.region }}.{{ data.domain }}/h";
        assert!(allows(source, "api.eu.example.com"));
        assert!(!allows(source, "evil.com"));
        assert_eq!(rule("https://{{ data.host }}-{{ data.zone }}/h"), None);
        // A name written out whole is still a host, not a beginning.
        assert!(!allows(
            "https://api.example.com{{ x }}",
            "api.example.com.evil.com"
        ));
    }

    #[test]
    fn a_port_written_out_ends_the_host() {
        let source = "https://api.example.com:{{ data.port }}/h";
        assert!(allows(source, "api.example.com"));
        assert!(!allows(source, "api.example.com.evil.com"));
        let source = "https://{{ data.tenant }}.example.com:443/h";
        assert!(allows(source, "acme.example.com"));
        assert!(!allows(source, "evil.com"));
    }

    #[test]
    fn a_scheme_left_to_liquid_cannot_bring_a_host_of_its_own() {
        // `https://evil.com/?x=` as the scheme: the host the text writes out is kept.
        let source = "{{ data.scheme }}://api.example.com/hooks";
        assert!(allows(source, "api.example.com"));
        assert!(!allows(source, "evil.com"));
    }

    #[test]
    fn only_text_outside_blocks_is_written_out() {
        // What a block prints is unknown, so it is a gap; text after it is kept.
        let source =
            "https://{% if data.a %}x{% endif %}.example.com{% comment %}.org{% endcomment %}/";
        let r = rule(source).unwrap();
        assert_eq!(r.starts, None);
        assert_eq!(r.ends.as_deref(), Some(".example.com"));
        assert!(r.open_end);
        // Whitespace control trims the text beside it; hosts hold no spaces anyway.
        let source = "https://api.example.com {{- data.path }}";
        assert!(!allows(source, "api.example.com.evil.com"));
        // A `://` inside a later part is not the scheme's.
        assert_eq!(
            rule("{{ data.base }}/go?to=https://x.example.com{{ data.p }}"),
            None
        );
    }
}
