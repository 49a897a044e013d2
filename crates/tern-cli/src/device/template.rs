//! A minimal text template for the generated device files: `{{NAME}}` is replaced by a
//! value, and lines holding only `{{#if FLAG}}`, `{{#if !FLAG}}`, `{{else}}` or `{{/if}}`
//! keep or drop the lines between them (blocks nest). The directive lines themselves
//! vanish, so the output has no blank lines where they stood.
//!
//! It is strict: an unknown name or flag, a directive inside a line, or an unbalanced
//! block is an error, so a typo in a template fails the tests instead of writing
//! `{{TYPO}}` into a user's sketch. Values are inserted verbatim (they are not scanned for
//! more `{{...}}`). Pure: no I/O.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};

/// Values and flags for one rendering.
#[derive(Debug, Default, Clone)]
pub struct Vars {
    values: BTreeMap<&'static str, String>,
    flags: BTreeMap<&'static str, bool>,
}

impl Vars {
    /// Sets `{{name}}`.
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.values.insert(name, value.into());
        self
    }

    /// Sets the flag tested by `{{#if name}}`.
    pub fn flag(&mut self, name: &'static str, on: bool) -> &mut Self {
        self.flags.insert(name, on);
        self
    }

    fn flag_value(&self, name: &str, line: usize) -> Result<bool> {
        let (negate, name) = match name.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        let on = self
            .flags
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("template line {line}: unknown flag `{name}`"))?;
        Ok(on != negate)
    }
}

/// One open `{{#if}}` block.
struct Block {
    /// Whether the enclosing text is emitted.
    parent_on: bool,
    /// The condition's value.
    cond: bool,
    /// Inside the `{{else}}` part.
    in_else: bool,
    /// Line of the `{{#if}}`, for errors.
    line: usize,
}

impl Block {
    fn on(&self) -> bool {
        self.parent_on && (self.cond != self.in_else)
    }
}

/// Renders `template` with `vars`.
pub fn render(template: &str, vars: &Vars) -> Result<String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut stack: Vec<Block> = Vec::new();
    for (i, raw) in template.split_inclusive('\n').enumerate() {
        let line = i + 1;
        let on = stack.last().is_none_or(Block::on);
        let trimmed = raw.trim();
        if let Some(cond) = trimmed
            .strip_prefix("{{#if ")
            .and_then(|r| r.strip_suffix("}}"))
        {
            let cond = vars.flag_value(cond.trim(), line)?;
            stack.push(Block {
                parent_on: on,
                cond,
                in_else: false,
                line,
            });
            continue;
        }
        if trimmed == "{{else}}" {
            let top = stack
                .last_mut()
                .ok_or_else(|| anyhow!("template line {line}: {{{{else}}}} outside a block"))?;
            if top.in_else {
                bail!("template line {line}: second {{{{else}}}} in one block");
            }
            top.in_else = true;
            continue;
        }
        if trimmed == "{{/if}}" {
            stack
                .pop()
                .ok_or_else(|| anyhow!("template line {line}: {{{{/if}}}} without {{{{#if}}}}"))?;
            continue;
        }
        if on {
            substitute(raw, vars, line, &mut out)?;
        } else {
            // Still check dropped lines, so every template error shows in every rendering.
            substitute(raw, vars, line, &mut String::new())?;
        }
    }
    if let Some(open) = stack.last() {
        bail!("template line {}: {{{{#if}}}} is never closed", open.line);
    }
    Ok(out)
}

fn substitute(line_text: &str, vars: &Vars, line: usize, out: &mut String) -> Result<()> {
    let mut rest = line_text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("template line {line}: `{{{{` without `}}}}`"))?;
        let name = &after[..end];
        if name.starts_with('#') || name.starts_with('/') || name == "else" {
            bail!("template line {line}: `{{{{{name}}}}}` must be alone on its line");
        }
        let value = vars
            .values
            .get(name)
            .ok_or_else(|| anyhow!("template line {line}: unknown value `{name}`"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set("HOST", "broker.example.com")
            .set("BRACES", "{{HOST}}")
            .flag("YES", true)
            .flag("NO", false);
        v
    }

    #[test]
    fn substitutes_values_verbatim() {
        let out = render("a {{HOST}} b {{BRACES}}\n", &vars()).unwrap();
        assert_eq!(out, "a broker.example.com b {{HOST}}\n");
    }

    #[test]
    fn blocks_keep_or_drop_lines_and_vanish() {
        let t = "1\n{{#if YES}}\n2\n{{else}}\n3\n{{/if}}\n  {{#if NO}}\n4\n  {{else}}\n5\n{{/if}}\n{{#if !NO}}\n6\n{{/if}}\n";
        assert_eq!(render(t, &vars()).unwrap(), "1\n2\n5\n6\n");
    }

    #[test]
    fn blocks_nest() {
        let t = "{{#if NO}}\n{{#if YES}}\na\n{{else}}\nb\n{{/if}}\n{{else}}\n{{#if YES}}\nc\n{{else}}\nd\n{{/if}}\n{{/if}}\n";
        assert_eq!(render(t, &vars()).unwrap(), "c\n");
    }

    #[test]
    fn errors_name_the_line() {
        for (t, want) in [
            ("x\n{{MISSING}}\n", "line 2: unknown value `MISSING`"),
            ("{{#if MAYBE}}\n{{/if}}\n", "line 1: unknown flag `MAYBE`"),
            ("{{#if YES}}\n", "line 1: {{#if}} is never closed"),
            ("{{/if}}\n", "line 1: {{/if}} without {{#if}}"),
            ("{{else}}\n", "line 1: {{else}} outside a block"),
            ("a {{#if YES}}\n", "line 1: `{{#if YES}}` must be alone"),
            ("a {{HOST\n", "line 1: `{{` without `}}`"),
            (
                "{{#if NO}}\n{{TYPO}}\n{{/if}}\n",
                "line 2: unknown value `TYPO`",
            ),
        ] {
            let err = render(t, &vars()).unwrap_err().to_string();
            assert!(err.contains(want), "{t:?}: {err}");
        }
    }
}
