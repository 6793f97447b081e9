"""Mustache templates (the public module other packages use): parsing, the variables a template
needs, and rendering, all through `chevron-ng` (a maintained, spec-conformant Mustache renderer;
README, "Dependencies and why"). No hand-written placeholder syntax is left in SESami.

Logic-less on purpose: a template can only interpolate values and show or hide sections. Values
are strings (a caller's numbers become strings first), so no lambda can ever run; partials are
refused (`{{> name}}` would read another template or a file), and chevron-ng loads none anyway.

    template = Template.parse(source, "template.html", html=True)   # 400 naming the field
    template.variables          # names every rendering needs (a missing one is a 400)
    template.sections           # {{#name}} / {{^name}} names: optional, absent means false
    template.render(values)     # HTML-escaped when html=True

HTML parts: every `{{name}}` value is escaped (& < > "), which is Mustache's escaping and safe in
text and in double-quoted attribute values. Where it is not enough, the template is refused when
it is parsed rather than rendered unsafely: `{{{name}}}` / `{{& name}}` (unescaped), and a
variable inside a single-quoted or unquoted attribute value or inside a tag itself (a space or an
apostrophe there would start a new attribute such as `onmouseover=`).

URL attributes: a variable at the start of an `href`, `src` (or another attribute that holds a
URL: `URL_ATTRIBUTES`), before any `:`, `/`, `?` or `#` of the template's own text, decides the
URL's scheme, which escaping does not constrain: `href="{{url}}"` with `javascript:...` would put
a script link in the mail. Such variables are `url_variables`; rendering refuses (400 naming the
variable) a value for one whose scheme is not http, https or mailto. Browsers drop tabs and line
breaks inside a URL and leading spaces and control characters before it, so the scheme is read
after removing those; a value without a scheme (a relative URL) is fine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.headers import bad

MAX_TEMPLATE_CHARS = 500_000  # one part's source
MAX_VALUES = 50
MAX_VALUE_CHARS = 10_000
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "background", "poster", "cite", "data", "xlink:href"}
    | {"longdesc", "usemap", "lowsrc", "dynsrc", "ping", "manifest", "codebase", "srcset"}
)
URL_SCHEMES = ("http", "https", "mailto")
_LONGEST_URL_ATTRIBUTE = max(len(a) for a in URL_ATTRIBUTES)
_SCHEME = re.compile(r"^([^:/?#]*):")
_URL_IGNORED = re.compile(r"[\t\n\r]|^[\x00-\x20]+")  # what browsers drop from a URL


@dataclass(frozen=True)
class Template:
    """One part (subject, html or text) of a template, checked once."""

    source: str
    html: bool = False
    variables: frozenset[str] = field(default_factory=frozenset)
    sections: frozenset[str] = field(default_factory=frozenset)
    # Variables that can start a URL attribute's value (module docstring): schemes checked.
    url_variables: frozenset[str] = field(default_factory=frozenset)
    # The library's tokens, kept from parsing: rendering starts from them. In subject and text,
    # where HTML escaping would only garble values, every interpolation is a "no escape" one.
    tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def parse(cls, source: str, where: str, *, html: bool = False) -> Template:
        """The template, or InvalidRequest naming `where` (unclosed sections, partials,
        unsafe HTML placements, over-long source)."""
        from chevron import ChevronError
        from chevron.tokenizer import tokenize

        if len(source) > MAX_TEMPLATE_CHARS:
            raise bad(where, f"{where} is over {MAX_TEMPLATE_CHARS} characters")
        variables: set[str] = set()
        url_variables: set[str] = set()
        sections: set[str] = set()
        tokens: list[tuple[str, str]] = []
        state = _HtmlState()
        try:
            for kind, key in tokenize(source):
                tokens.append(
                    ("no escape", key) if kind == "variable" and not html else (kind, key)
                )
                if kind == "literal":
                    if html:
                        state.feed(key)
                elif kind in ("variable", "no escape"):
                    if html and kind == "no escape":
                        raise bad(
                            where,
                            f"{where}: {{{{{{{key}}}}}}} would insert {key} unescaped; in html "
                            "every value is escaped: use {{" + key + "}}",
                        )
                    if html and state.unsafe():
                        raise bad(
                            where,
                            f"{where}: {{{{{key}}}}} sits {state.unsafe()}, where escaping cannot "
                            'protect it; put it in text or in a double-quoted attribute (a="...")',
                        )
                    if key != ".":
                        variables.add(_checked_name(key, where))
                    if html and state.url_start():
                        url_variables.add(key)
                elif kind in ("section", "inverted section"):
                    sections.add(_checked_name(key, where))
                elif kind == "partial":
                    raise bad(where, f"{where}: partials ({{{{> {key}}}}}) are not supported")
        except ChevronError as exc:
            message = " ".join(str(exc).split())
            raise bad(where, f"{where} is not a valid Mustache template: {message}") from None
        return cls(
            source,
            html,
            frozenset(variables),
            frozenset(sections),
            frozenset(url_variables),
            tuple(tokens),
        )

    def render(self, values: Mapping[str, str], field: str = "variables") -> str:
        """Render with `values` (flat names; `a.b` names are Mustache's dotted lookups). A value
        that would give a URL attribute a scheme other than http(s)/mailto is a 400 naming
        `field`.<name>."""
        import chevron

        for name in sorted(self.url_variables):
            value = values.get(name, "")
            scheme = _SCHEME.match(_URL_IGNORED.sub("", value))
            if scheme and scheme.group(1).lower() not in URL_SCHEMES:
                raise bad(
                    f"{field}.{name}",
                    f"{field}.{name} goes into a link or image address and must be an http(s) "
                    f"or mailto URL, not {scheme.group(1)[:20]!r}:",
                )
        # Missing names render empty; callers check `variables` first (`missing`).
        return str(chevron.render(list(self.tokens), nested(values)))

    def missing(self, values: Mapping[str, Any]) -> list[str]:
        return sorted(self.variables - set(values))


def nested(values: Mapping[str, str]) -> dict[str, Any]:
    """Flat names to the context Mustache looks dotted names up in: {"a.b": x} -> {"a": {"b": x}}.
    A name that is also the prefix of another (`a` and `a.b`) keeps the dotted values."""
    out: dict[str, Any] = {}
    for name, value in sorted(values.items(), key=lambda item: item[0].count(".")):
        parts = name.split(".")
        scope = out
        for part in parts[:-1]:
            inner = scope.get(part)
            if not isinstance(inner, dict):
                inner = scope[part] = {}
            scope = inner
        if not isinstance(scope.get(parts[-1]), dict):
            scope[parts[-1]] = value
    return out


def parse_values(raw: Any, field: str) -> dict[str, str]:
    """Variables as a caller gives them: an object of at most MAX_VALUES names, each a string or
    a number (kept as text) of at most MAX_VALUE_CHARS characters. A 400 names the field."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping) or len(raw) > MAX_VALUES:
        raise bad(field, f"{field} must be an object of ≤ {MAX_VALUES} values")
    values: dict[str, str] = {}
    for name, value in raw.items():
        vfield = f"{field}.{name}"
        if not isinstance(name, str) or not name or not _is_name(name):
            raise bad(vfield, "a variable name is a letter or '_' then letters, digits, _ . -")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad(vfield, f"{vfield} must be a string or a number")
        text = str(value)
        if len(text) > MAX_VALUE_CHARS:
            raise bad(vfield, f"{vfield} is over {MAX_VALUE_CHARS} characters")
        values[name] = text
    return values


def _is_name(key: str) -> bool:
    return 0 < len(key) <= 64 and set(key) <= _NAME_CHARS and key[0] not in ".-0123456789"


def _checked_name(key: str, where: str) -> str:
    if not _is_name(key):
        raise bad(
            where,
            f"{where}: {{{{{key[:64]}}}}}: a name is a letter or '_' then letters, digits, _ . -",
        )
    return key


class _HtmlState:
    """Where the HTML source stands after the literal text seen so far: in text, inside a tag,
    or inside an attribute value quoted with " or '. Comments and raw-text elements are text
    for this purpose: nothing there is interpreted as attributes."""

    def __init__(self) -> None:
        self._in_tag = False
        self._quote: str | None = None
        self._after_equals = False
        self._lt = False  # a '<' whose next character decides whether a tag starts
        self._name = ""  # the attribute name being read, or the last one read
        self._name_done = True
        self._url_value = False  # inside a URL attribute's quoted value
        self._scheme_fixed = False  # ... after the template's own ":", "/", "?" or "#" in it

    def feed(self, text: str) -> None:
        for ch in text:
            if self._lt:
                self._lt = False
                self._in_tag = ch.isalpha() or ch in "/!?"
                continue
            if self._quote:
                if ch == self._quote:
                    self._quote, self._url_value = None, False
                elif ch in ":/?#":
                    self._scheme_fixed = True
            elif self._in_tag:
                if ch == ">":
                    self._in_tag, self._after_equals = False, False
                elif ch in "\"'" and self._after_equals:
                    self._quote, self._after_equals = ch, False
                    self._url_value = self._name.lower() in URL_ATTRIBUTES
                    self._scheme_fixed = False
                elif ch == "=":
                    self._after_equals, self._name_done = True, True
                elif ch.isspace() or ch == "/":
                    self._name_done = True
                else:
                    self._after_equals = False
                    if self._name_done:
                        self._name, self._name_done = "", False
                    if len(self._name) <= _LONGEST_URL_ATTRIBUTE:  # longer: not one of them
                        self._name += ch
            elif ch == "<":
                self._lt = True

    def url_start(self) -> bool:
        """In a URL attribute's value, before the template's own text fixed the scheme."""
        return self._url_value and not self._scheme_fixed

    def unsafe(self) -> str | None:
        if self._quote == '"':
            return None
        if self._quote == "'":
            return "in a single-quoted attribute value"
        if self._in_tag or self._lt:
            return "inside an HTML tag (an unquoted attribute value or the tag itself)"
        return None


@dataclass(frozen=True)
class MessageTemplate:
    """A message's three parts as templates: subject (a header: never escaped, checked by the
    caller for line breaks once rendered), html (escaped) and text. `template_id` and `version`
    say which stored template it came from, if one."""

    subject: Template
    html: Template | None
    text: Template | None
    template_id: str | None = None
    version: int | None = None

    @classmethod
    def parse(
        cls,
        subject: str,
        html: str | None,
        text: str | None,
        prefix: str = "",
        *,
        template_id: str | None = None,
        version: int | None = None,
    ) -> MessageTemplate:
        return cls(
            Template.parse(subject, f"{prefix}subject"),
            Template.parse(html, f"{prefix}html", html=True) if html is not None else None,
            Template.parse(text, f"{prefix}text") if text is not None else None,
            template_id,
            version,
        )

    @property
    def parts(self) -> tuple[Template, ...]:
        return tuple(t for t in (self.subject, self.html, self.text) if t is not None)

    @property
    def variables(self) -> frozenset[str]:
        return frozenset().union(*(t.variables for t in self.parts))

    @property
    def sections(self) -> frozenset[str]:
        return frozenset().union(*(t.sections for t in self.parts))

    def missing(self, values: Mapping[str, Any]) -> list[str]:
        return sorted(self.variables - set(values))

    def render(
        self, values: Mapping[str, str], field: str = "variables"
    ) -> tuple[str, str | None, str | None]:
        """(subject, html, text) for these values; a 400 names `field` (see Template.render)."""
        return (
            self.subject.render(values, field),
            self.html.render(values, field) if self.html is not None else None,
            self.text.render(values, field) if self.text is not None else None,
        )

    def sources(self) -> dict[str, str | None]:
        return {
            "subject": self.subject.source,
            "html": self.html.source if self.html else None,
            "text": self.text.source if self.text else None,
        }
