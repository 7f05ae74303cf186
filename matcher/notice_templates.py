"""Every notice's template as the providers register it, for the administrator's preview.

The wording of each notice is defined once, in `notifications.EVENTS`; this module only reads it.
For each event and language it gives:

- the template: the wording with each parameter as `${name}` (the variable syntax of the Chinese SMS
  providers), found by calling the event's function with a mapping that answers any key with
  "${key}" (`Placeholders`), and " ${url}" appended, as the SMS templates carry the message's link;
- an example: the same wording with realistic sample values (`SAMPLES`), the signature "【邻里】" in
  front and a 40-character link at the end, as a phone shows it;
- the example's length and how many SMS segments it takes (`sms_length`): 70 characters in one
  segment when any character is outside the GSM 7-bit alphabet (Chinese always), else 160; a longer
  text goes in parts of 67 or 153.

It also says, per event, which SMS and WeChat templates are configured, and, per channel, whether it
is configured at all. Nothing here uses a request: it needs the application's config and Babel only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from .notifications import EVENTS, sms_wording
from .settings import setting, sms_settings

LOCALES = ("zh_CN", "en")
# A short link as a message carries it (`matcher.shortlinks`): 40 characters, counted in every example.
SAMPLE_URL = "https://linli.example.org/n/3kF9aB7xQ2cD"
URL_VARIABLE = "${url}"
DEFAULT_SIGN_NAME = "邻里"
# The channels the preview always reports on (others in the registry are listed after them).
CHANNELS = ("sms", "email", "wechat")
CHANNEL_LABELS = {"sms": _l("SMS"), "email": _l("E-mail"), "wechat": _l("WeChat")}

# A human name for the events known today; an event added later shows its code made readable
# (`event_label`) until it gets a name here. The preview lists whatever EVENTS holds.
EVENT_LABELS = {
    "demand_changed": _l("Demand changed after publishing (to coordinators)"),
    "demand_cancelled": _l("Demand cancelled (to coordinators)"),
    "demand_review": _l("Demand awaits review"),
    "demand_review_urgent": _l("Urgent demand awaits review"),
    "demand_approved": _l("Demand approved"),
    "demand_returned": _l("Demand returned to its author"),
    "offer_declined": _l("Offer declined (to coordinators)"),
    "handed_back": _l("Service handed back (to coordinators)"),
    "membership_approved": _l("Membership approved"),
    "membership_rejected": _l("Membership not accepted"),
    "offer": _l("New offers"),
    "offer_changed": _l("Offers changed"),
    "offer_withdrawn": _l("Offers withdrawn"),
    "service_cancelled": _l("Service no longer takes place"),
    "service_given": _l("Service given by the organization"),
    "service_taken": _l("Service taken away"),
    "reminder": _l("Reminder before a service"),
    "reminder_urgent": _l("Reminder before an urgent service"),
    "checkin_today": _l("Today's check-in page (to community workers)"),
    "rated": _l("A resident's rating (to the volunteer)"),
}

# Sample values by parameter name, per language; a name not listed here shows "…".
SAMPLES: dict[str, dict[str, str]] = {
    "zh_CN": {
        "t": "陪同就医", "title": "陪同就医", "c": "东城社区", "community": "东城社区",
        "items": "“助老陪护” 2026-12-02 09:00", "r": "家中有事", "why": "服务时间已调整",
        "reason": "家中有事", "name": "李梅", "o": "东城助老服务队", "org": "东城助老服务队",
        "when": "2026-12-02 09:00", "d": "2026-12-02", "date": "2026-12-02", "time": "09:00",
        "start": "09:00", "end": "10:30", "stars": "5", "n": "3", "count": "3", "hours": "2",
        "place": "桂花社区活动中心", "where": "桂花社区活动中心", "address": "桂花社区3栋2单元",
        "code": "4821", "comment": "很耐心，谢谢", "resident": "张大爷", "volunteer": "李梅",
    },
    "en": {
        "t": "Escort to hospital", "title": "Escort to hospital", "c": "Dongcheng community",
        "community": "Dongcheng community", "items": "“Elder care” 2026-12-02 09:00",
        "r": "family matters", "why": "The time was changed.", "reason": "family matters", "name": "Li Mei",
        "o": "Dongcheng elder care team", "org": "Dongcheng elder care team", "when": "2026-12-02 09:00",
        "d": "2026-12-02", "date": "2026-12-02", "time": "09:00", "start": "09:00", "end": "10:30",
        "stars": "5", "n": "3", "count": "3", "hours": "2", "place": "Guihua community centre",
        "where": "Guihua community centre", "address": "Guihua community, building 3",
        "code": "4821", "comment": "Very patient, thank you", "resident": "Mr Zhang", "volunteer": "Li Mei",
    },
}
UNKNOWN_SAMPLE = "…"

# The GSM 03.38 7-bit alphabet: the basic set (one septet each) and the extension set (an escape
# and the character: two septets).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM_SINGLE, GSM_PART = 160, 153   # septets in one segment, in each part of a longer message
UCS2_SINGLE, UCS2_PART = 70, 67   # UTF-16 code units likewise


@dataclass(frozen=True)
class SmsLength:
    """How long a text is as an SMS: characters, encoding units, whether GSM 7-bit, segments."""

    chars: int
    units: int      # septets (GSM 7-bit) or UTF-16 code units (UCS-2)
    gsm: bool
    segments: int

    @property
    def single(self) -> bool:
        """Whether it fits in one segment."""
        return self.segments <= 1


def is_gsm(text: str) -> bool:
    """Whether every character of `text` is in the GSM 7-bit alphabet (basic or extension)."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def _costs(text: str, gsm: bool) -> list[int]:
    if gsm:
        return [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # a character beyond the BMP is a surrogate pair


def sms_length(text: str) -> SmsLength:
    """The text's length and segment count as one SMS; a multi-part message never splits an escape
    sequence or a surrogate pair between two parts."""
    gsm = is_gsm(text)
    costs = _costs(text, gsm)
    units = sum(costs)
    single, part = (GSM_SINGLE, GSM_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    if units <= single:
        return SmsLength(chars=len(text), units=units, gsm=gsm, segments=1)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return SmsLength(chars=len(text), units=units, gsm=gsm, segments=segments)


class Placeholders(dict):
    """A mapping that answers any key with "${key}" and remembers the keys asked, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def __missing__(self, key: str) -> str:
        if key not in self.asked:
            self.asked.append(key)
        return "${" + key + "}"

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key: str, default: Any = None) -> str:
        return self[key]


class Samples(dict):
    """A mapping that answers any key with its sample value in `locale` ("…" for an unknown name)."""

    def __init__(self, locale: str) -> None:
        super().__init__()
        self.samples = SAMPLES.get(locale, SAMPLES["en"])

    def __missing__(self, key: str) -> str:
        return self.samples.get(key, UNKNOWN_SAMPLE)

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key: str, default: Any = None) -> str:
        return self[key]


def event_label(event: str) -> str:
    """The event's human name in the current language (its code made readable when it has none)."""
    label = EVENT_LABELS.get(event)
    return str(label) if label is not None else event.replace("_", " ").capitalize()


def render_template_text(event: str, locale: str) -> tuple[str, list[str]]:
    """The event's SMS wording (`notifications.sms_wording`: the short one where the full one cannot fit
    a segment) in `locale` with each parameter as `${name}`, and the parameters' names in the order the
    wording asks for them (without the link)."""
    params = Placeholders()
    with force_locale(locale):
        text = str(sms_wording(event)(params)).strip()
    return text, params.asked


def render_example(event: str, locale: str, *, full: bool = False) -> str:
    """The event's SMS wording (or with `full`, the wording of the app and e-mail) in `locale` with
    sample values (without signature or link)."""
    with force_locale(locale):
        return str((EVENTS[event] if full else sms_wording(event))(Samples(locale))).strip()


def sms_text(wording: str, sign_name: str, url: str = SAMPLE_URL) -> str:
    """A wording as the phone shows it: the signature in brackets, the text, a space and the link."""
    return f"【{sign_name}】{wording} {url}"


@dataclass
class Wording:
    """One event in one language."""

    locale: str
    template: str = ""        # with ${name} variables and " ${url}"
    example: str = ""         # as a phone shows it: signature, sample values, the link
    full: str = ""            # the wording in the app and by e-mail, with sample values
    length: SmsLength | None = None
    error: str = ""           # why it could not be rendered (a translation whose variables do not fit)


@dataclass
class NoticePreview:
    """One event: its wording in each language and the templates the providers know it by."""

    event: str
    label: str
    params: list[str] = field(default_factory=list)
    wordings: list[Wording] = field(default_factory=list)
    sms_template: str = ""
    wechat: dict[str, Any] | None = None

    def over_one_segment_in(self, locale: str) -> bool:
        """Whether its SMS in `locale` takes more than one segment."""
        return any(w.locale == locale and w.length is not None and not w.length.single for w in self.wordings)

    @property
    def over_one_segment(self) -> bool:
        """Whether its SMS takes more than one segment in any language."""
        return any(self.over_one_segment_in(w.locale) for w in self.wordings)


def wechat_templates() -> dict[str, dict[str, Any]]:
    """WECHAT_TEMPLATES read defensively: event -> {"id", "page", "fields"}; absent or unreadable
    entries are left out (a JSON string is read as JSON)."""
    value = setting("WECHAT_TEMPLATES", None) or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if not isinstance(value, dict):
        return {}
    readable: dict[str, dict[str, Any]] = {}
    for event, template in value.items():
        if isinstance(template, str) and template:
            template = {"id": template}
        if not isinstance(template, dict) or not template.get("id"):
            continue
        fields = template.get("fields")
        readable[str(event)] = {
            "id": str(template["id"]), "page": str(template.get("page") or ""),
            "fields": {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
        }
    return readable


def sign_name() -> str:
    """The SMS signature (SMS_SIGN_NAME), or the service's name when none is set."""
    return sms_settings()["sign_name"] or DEFAULT_SIGN_NAME


def preview_event(event: str, *, sign: str, sms: dict[str, str], wechat: dict[str, dict[str, Any]],
                  locales: Iterable[str] = LOCALES) -> NoticePreview:
    """The preview of one event of EVENTS."""
    preview = NoticePreview(event=event, label=event_label(event), sms_template=sms.get(event, ""),
                            wechat=wechat.get(event))
    for locale in locales:
        wording = Wording(locale=locale)
        try:
            template, asked = render_template_text(event, locale)
            example = render_example(event, locale)
            wording.full = render_example(event, locale, full=True)
        except (KeyError, TypeError, ValueError) as exc:
            wording.error = f"{type(exc).__name__}: {exc}"
        else:
            wording.template = f"{template} {URL_VARIABLE}"
            wording.example = sms_text(example, sign)
            wording.length = sms_length(wording.example)
            preview.params.extend(name for name in asked if name not in preview.params)
        preview.wordings.append(wording)
    return preview


def preview_all(locales: Iterable[str] = LOCALES) -> list[NoticePreview]:
    """Every event of EVENTS, in EVENTS' order."""
    locales = tuple(locales)
    sign, sms, wechat = sign_name(), sms_settings()["templates"], wechat_templates()
    return [preview_event(event, sign=sign, sms=sms, wechat=wechat, locales=locales) for event in EVENTS]


@dataclass(frozen=True)
class ChannelState:
    """Whether an outside channel is available and has its provider settings."""

    name: str
    label: str
    present: bool      # the installation has the channel at all
    configured: bool


def channel_states() -> list[ChannelState]:
    """SMS, e-mail and WeChat (and any other registered channel): present, and configured or off."""
    from .outbox import channel_registry

    registry = channel_registry()
    names = list(CHANNELS) + sorted(name for name in registry if name not in CHANNELS)
    states = []
    for name in names:
        channel = registry.get(name)
        configured = False
        if channel is not None:
            try:
                configured = bool(channel.configured())
            except Exception:  # a broken setting makes the channel off here; the sender logs it when sending
                configured = False
        label = CHANNEL_LABELS.get(name)
        states.append(ChannelState(name=name, label=str(label) if label is not None else name,
                                   present=channel is not None, configured=configured))
    return states
