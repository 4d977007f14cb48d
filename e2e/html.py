"""What the checks read from an HTML page: links, assets, forms and the elements they look for."""

from dataclasses import dataclass, field
from html.parser import HTMLParser

# Elements without an end tag: never left open while their text is collected.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Input types a browser leaves out of a submitted form (a button is added by hand when it matters).
NOT_SUBMITTED = {"submit", "button", "image", "reset", "file"}


@dataclass
class Element:
    """An element with its attributes and the text inside it."""

    tag: str
    attrs: dict
    text: str = ""

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())


@dataclass
class Form:
    """A form: its attributes and the (name, value) pairs a browser would submit, in order."""

    attrs: dict
    fields: list = field(default_factory=list)

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())

    @property
    def method(self):
        return (self.attrs.get("method") or "get").lower()

    def value(self, name):
        """Return the first value submitted under `name`, or None."""
        return next((value for key, value in self.fields if key == name), None)

    def replaced(self, **values):
        """Return the fields with each of `values` replaced (or added)."""
        kept = [(key, value) for key, value in self.fields if key not in values]
        return kept + list(values.items())


@dataclass
class Page:
    """A parsed page. Call parse(); every list keeps document order."""

    elements: list = field(default_factory=list)
    forms: list = field(default_factory=list)

    def all(self, tag=None, attr=None, cls=None):
        """Return the elements with this tag, attribute and class (each optional)."""
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag) and (attr is None or attr in e.attrs) and (cls is None or cls in e.classes)
        ]

    def first(self, tag=None, attr=None, cls=None):
        found = self.all(tag, attr, cls)
        return found[0] if found else None

    def links(self):
        """Return the href of every <a>."""
        return [e.attrs["href"] for e in self.all("a", "href")]

    def stylesheets(self):
        return [e.attrs["href"] for e in self.all("link", "href") if "stylesheet" in e.attrs.get("rel", "").split()]

    def scripts(self):
        return [e.attrs["src"] for e in self.all("script", "src")]


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.open = []  # elements whose text is still being collected
        self.form = None
        self.select = None
        self.textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = {name: value if value is not None else "" for name, value in attrs}
        element = Element(tag, attrs)
        self.page.elements.append(element)
        if tag not in VOID:
            self.open.append(element)
        if tag == "form":
            self.form = Form(attrs)
            self.page.forms.append(self.form)
        elif self.form is not None:
            self._field(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def _field(self, tag, attrs):
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type", "text").lower() not in NOT_SUBMITTED:
            if attrs.get("type", "").lower() not in ("checkbox", "radio") or "checked" in attrs:
                self.form.fields.append((name, attrs.get("value", "on" if "checked" in attrs else "")))
        elif tag == "select" and name:
            self.select = (name, [])
        elif tag == "option" and self.select is not None and "selected" in attrs:
            self.select[1].append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self.textarea = [name, ""]

    def handle_endtag(self, tag):
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index].tag == tag:
                del self.open[index:]
                break
        if tag == "select" and self.select is not None:
            self.form.fields += [(self.select[0], value) for value in self.select[1]]
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            # HTML drops the newline right after <textarea>.
            name, text = self.textarea
            self.form.fields.append((name, text[1:] if text.startswith("\n") else text))
            self.textarea = None
        elif tag == "form":
            self.form = None

    def handle_data(self, data):
        for element in self.open:
            element.text += data
        if self.textarea is not None:
            self.textarea[1] += data


def parse(html):
    """Return the Page of an HTML document."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page
