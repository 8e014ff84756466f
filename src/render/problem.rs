//! Problems found in templates, as data. Each kind maps to one diagnostic
//! code (see [`ProblemKind::code`]); [`TemplateProblem::into_diagnostic`]
//! turns a problem into a [`Diagnostic`] once the code is registered.

use crate::diagnostics::{Code, Diagnostic, Label, Severity, Span};

/// What is wrong, one variant per diagnostic code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// E0510: a variable that is not a contact field nor a template variable.
    UnknownVariable,
    /// E0511: a helper that is neither one of §6 nor a Handlebars built-in.
    UnknownHelper,
    /// E0512: `{{> NAME}}` without `templates/partials/NAME.hbs`.
    UnknownPartial,
    /// E0513: partials that include each other.
    PartialCycle,
    /// E0514: Handlebars cannot parse the template (or it is too large or
    /// nests too deeply to be parsed safely).
    SyntaxError,
    /// E0515: a marketing email whose HTML has no `{{unsubscribe_url}}`.
    MissingUnsubscribe,
    /// E0516: a subject, preheader or title with a line break after rendering.
    HeaderLineBreak,
    /// E0517: a helper called with the wrong arguments, or a template that
    /// fails to render for a persona.
    InvalidHelperCall,
    /// E0518: a `file("…")` template that is missing or outside the project.
    MissingTemplateFile,
    /// E0530: a marketing email that does not show the postal address for
    /// some persona (in its HTML or its text part).
    MissingAddress,
    /// E0531: a marketing email with no visible unsubscribe link for some
    /// persona.
    HiddenUnsubscribe,
    /// E0532: a marketing email whose text part has no unsubscribe URL.
    TextWithoutUnsubscribe,
    /// W0510: an optional field used without `default` or an `{{#if}}` guard.
    OptionalWithoutDefault,
    /// W0511: `{{{…}}}` on contact data in an escaped body.
    TripleStash,
    /// W0512: an SMS longer than one segment after rendering.
    SmsTooLong,
    /// E0520: a link or webhook URL that is not `https:` or `mailto:` once
    /// rendered for a persona.
    RenderedUrl,
    /// E0521: a part whose rendering for a persona is larger than 1 MiB or
    /// takes more than 100,000 `{{#each}}` iterations.
    RenderTooLarge,
    /// E0580: an email's `from` or `reply_to` that does not render as one
    /// RFC 5322 mailbox for some persona.
    RenderedSender,
}

impl ProblemKind {
    pub const ALL: &'static [ProblemKind] = &[
        ProblemKind::UnknownVariable,
        ProblemKind::UnknownHelper,
        ProblemKind::UnknownPartial,
        ProblemKind::PartialCycle,
        ProblemKind::SyntaxError,
        ProblemKind::MissingUnsubscribe,
        ProblemKind::HeaderLineBreak,
        ProblemKind::InvalidHelperCall,
        ProblemKind::MissingTemplateFile,
        ProblemKind::MissingAddress,
        ProblemKind::HiddenUnsubscribe,
        ProblemKind::TextWithoutUnsubscribe,
        ProblemKind::OptionalWithoutDefault,
        ProblemKind::TripleStash,
        ProblemKind::SmsTooLong,
        ProblemKind::RenderedUrl,
        ProblemKind::RenderTooLarge,
        ProblemKind::RenderedSender,
    ];

    /// The diagnostic code this kind is reported under.
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::UnknownVariable => "E0510",
            ProblemKind::UnknownHelper => "E0511",
            ProblemKind::UnknownPartial => "E0512",
            ProblemKind::PartialCycle => "E0513",
            ProblemKind::SyntaxError => "E0514",
            ProblemKind::MissingUnsubscribe => "E0515",
            ProblemKind::HeaderLineBreak => "E0516",
            ProblemKind::InvalidHelperCall => "E0517",
            ProblemKind::MissingTemplateFile => "E0518",
            ProblemKind::MissingAddress => "E0530",
            ProblemKind::HiddenUnsubscribe => "E0531",
            ProblemKind::TextWithoutUnsubscribe => "E0532",
            ProblemKind::OptionalWithoutDefault => "W0510",
            ProblemKind::TripleStash => "W0511",
            ProblemKind::SmsTooLong => "W0512",
            ProblemKind::RenderedUrl => "E0520",
            ProblemKind::RenderTooLarge => "E0521",
            ProblemKind::RenderedSender => "E0580",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            ProblemKind::OptionalWithoutDefault
            | ProblemKind::TripleStash
            | ProblemKind::SmsTooLong => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The one-line title for the code registry.
    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::UnknownVariable => "unknown template variable",
            ProblemKind::UnknownHelper => "unknown template helper",
            ProblemKind::UnknownPartial => "unknown partial",
            ProblemKind::PartialCycle => "partial cycle",
            ProblemKind::SyntaxError => "template syntax error",
            ProblemKind::MissingUnsubscribe => "marketing email without unsubscribe link",
            ProblemKind::HeaderLineBreak => "line break in a rendered header",
            ProblemKind::InvalidHelperCall => "invalid helper call",
            ProblemKind::MissingTemplateFile => "template file not found",
            ProblemKind::MissingAddress => "marketing email does not show the postal address",
            ProblemKind::HiddenUnsubscribe => "no visible unsubscribe link",
            ProblemKind::TextWithoutUnsubscribe => "text part without the unsubscribe link",
            ProblemKind::OptionalWithoutDefault => "optional field without default",
            ProblemKind::TripleStash => "triple-stash on contact data",
            ProblemKind::SmsTooLong => "SMS too long",
            ProblemKind::RenderedUrl => "rendered URL is not https: or mailto:",
            ProblemKind::RenderTooLarge => "rendered message too large",
            ProblemKind::RenderedSender => "template sender or reply-to is not one mailbox",
        }
    }
}

/// One problem in a template, with its place inside the template source
/// (the `.hbs` file, or the string literal in the `.camp` file).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateProblem {
    pub kind: ProblemKind,
    pub span: Span,
    pub message: String,
    /// The label under the span.
    pub label: String,
    pub help: Option<String>,
    /// Further places: `(span, label)`.
    pub secondary: Vec<(Span, String)>,
}

impl TemplateProblem {
    pub fn new(
        kind: ProblemKind,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> TemplateProblem {
        TemplateProblem {
            kind,
            span,
            message: message.into(),
            label: label.into(),
            help: None,
            secondary: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> TemplateProblem {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> TemplateProblem {
        self.help = help;
        self
    }

    pub fn also(mut self, span: Span, label: impl Into<String>) -> TemplateProblem {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// The diagnostic for this problem, or `None` while its code is not yet
    /// in the registry (`diagnostics::codes`).
    pub fn into_diagnostic(self) -> Option<Diagnostic> {
        let code = Code::parse(self.kind.code())?;
        Some(Diagnostic {
            code,
            message: self.message,
            primary: Some(Label {
                span: self.span,
                message: self.label,
            }),
            secondary: self
                .secondary
                .into_iter()
                .map(|(span, message)| Label { span, message })
                .collect(),
            help: self.help,
        })
    }
}

/// Sorts problems by place and removes exact duplicates (a partial checked
/// through several templates reports each problem once).
pub(crate) fn sort_problems(problems: &mut Vec<TemplateProblem>) {
    problems.sort_by(|a, b| {
        (a.span.file, a.span.start, a.span.end, a.kind, &a.message).cmp(&(
            b.span.file,
            b.span.start,
            b.span.end,
            b.kind,
            &b.message,
        ))
    });
    problems.dedup();
}
