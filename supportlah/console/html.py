"""A tiny escaping template helper: every value is escaped unless it is already :class:`Markup`.

Customer text is untrusted and reaches these pages as plain values, so it is always
escaped; only fragments this module (or another template) produced pass through as-is.
``string.Template`` placeholders (``$name``) keep the templates readable without a
template engine dependency.
"""
from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from string import Template


class Markup(str):
    """HTML that is safe to insert as it is (made here, from escaped parts)."""


def esc(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


def render(template: str, **values: object) -> Markup:
    """``template`` with ``$name`` filled in, each value escaped (Markup values inserted as they are)."""
    return Markup(Template(template).substitute({key: esc(value) for key, value in values.items()}))


def join(fragments: Iterable[object], separator: str = "") -> Markup:
    return Markup(separator.join(esc(fragment) for fragment in fragments))


def when(moment: datetime | None) -> Markup:
    """A time as a <time> element (UTC, ISO in the attribute; the script shows it in local time)."""
    if moment is None:
        return Markup("—")
    return render('<time datetime="$iso">$text</time>', iso=moment.isoformat(),
                  text=moment.strftime("%d %b %H:%M UTC"))


def hidden(name: str, value: str) -> Markup:
    return render('<input type="hidden" name="$name" value="$value">', name=name, value=value)


def button_form(action: str, label: str, csrf: str, *, fields: dict[str, str] | None = None,
                css: str = "") -> Markup:
    """A one-button POST form (works without JavaScript); its button's text is its accessible name."""
    extra = join(hidden(key, value) for key, value in (fields or {}).items())
    return render('<form method="post" action="$action" class="inline">$csrf$extra'
                  '<button type="submit" class="$css">$label</button></form>',
                  action=action, csrf=hidden("csrf", csrf), extra=extra, label=label, css=css)


def page(title: str, body: Markup, *, user_name: str | None = None, is_owner: bool = False, csrf: str = "",
         active: str = "") -> Markup:
    """The console's layout: navigation (by role), the signed-in user, the CSRF header for htmx."""
    nav = Markup("")
    if user_name is not None:
        links = [("inbox", "/console/inbox", "Inbox")]
        if is_owner:
            links += [("knowledge", "/console/knowledge", "Knowledge"), ("try", "/console/try", "Try it"),
                      ("analytics", "/console/analytics", "Analytics"), ("setup", "/console/setup", "Setup")]
        items = join(render('<li><a href="$href"$current>$label</a></li>', href=href, label=label,
                            current=Markup(' aria-current="page"') if key == active else Markup(""))
                     for key, href, label in links)
        nav = render(
            '<nav aria-label="Console"><ul>$items</ul></nav>'
            '<div class="who"><span>Signed in as $name</span>'
            '<form method="post" action="/console/logout" class="inline">$csrf'
            '<button type="submit" class="link">Sign out</button></form></div>',
            items=items, name=user_name, csrf=hidden("csrf", csrf))
    return render(_LAYOUT, title=title, nav=nav, body=body, csrf=csrf)


_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false}'>
<title>$title · supportlah console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/htmx.min.js" defer></script>
<script src="/console/static/console.js" defer></script>
</head>
<body data-csrf="$csrf">
<a class="skip" href="#main">Skip to content</a>
<header class="top"><span class="brand">supportlah console</span>$nav</header>
<main id="main">
$body
</main>
</body>
</html>
"""
