"""Translations and locale-aware formatting: which language, and how to say it.

The strings in the code are in the default locale (``en_US`` unless
:func:`set_default_locale` says otherwise); translations map them into other
locales. Load one kind once at start-up:

- :func:`load_translations`: a directory of ``LOCALE.csv`` files (``es_GT.csv``),
  rows of ``"source","translation"`` with an optional third column
  ``singular`` / ``plural`` for strings whose translation depends on a count;
- :func:`load_gettext_translations`: a gettext tree,
  ``DIRECTORY/LOCALE/LC_MESSAGES/DOMAIN.mo``, with gettext's plural rules and
  :meth:`Locale.pgettext` contexts.

Then :func:`get` (``get("fr_CA", "en")``) picks the closest supported
:class:`Locale`: the exact code, else its language alone (``fr`` for
``fr_CA``), else the next code, else the default. A web handler does this from
the Accept-Language header (``RequestHandler.locale``).

Some facts a caller can rely on:

- Codes are normalised as ``ll_CC``: ``pt-br`` and ``pt_BR`` are the same
  locale; a code with more than two parts (``zh_Hant_TW``) is skipped.
- A message without a translation comes back unchanged, so a missing
  translation shows the default language, never an error.
- Loading replaces every translation loaded before (and forgets the
  :class:`Locale` objects made from them). A file that cannot be read or
  decoded, a file name that is not a locale code, and a row with an unknown
  plural marker are each logged on ``reactor.general`` and skipped; the rest
  loads.
- :meth:`Locale.format_date` speaks of the past ("5 minutes ago", "yesterday
  at 3:05 pm"); a date more than a minute ahead gets the full date. Naive
  datetimes and timestamps are UTC; ``gmt_offset`` is the viewer's offset in
  minutes, *west* of UTC positive (JavaScript's ``getTimezoneOffset()``).
"""

from __future__ import annotations

import codecs
import csv
import datetime
import gettext
import glob
import os
import re
from collections.abc import Iterable
from typing import Any

from reactor.log import gen_log

__all__ = [
    "CONTEXT_SEPARATOR",
    "LOCALE_NAMES",
    "CSVLocale",
    "GettextLocale",
    "Locale",
    "get",
    "get_supported_locales",
    "load_gettext_translations",
    "load_translations",
    "set_default_locale",
]

CONTEXT_SEPARATOR = "\x04"
"""What gettext puts between a message's context and the message (``msgctxt``)."""

_default_locale = "en_US"
# CSV: {locale: {"singular" | "plural" | "unknown": {source: translation}}};
# gettext: {locale: gettext.GNUTranslations}.
_translations: dict[str, Any] = {}
_supported_locales: frozenset[str] = frozenset([_default_locale])
_use_gettext = False

_LOCALE_CODE = re.compile(r"[a-z]+(_[A-Z]+)?\Z")
_PLURAL_MARKERS = ("plural", "singular", "unknown")


def get(*locale_codes: str) -> Locale:
    """The closest supported :class:`Locale` to the codes, tried in order (see
    :meth:`Locale.get_closest`); the default locale if none is supported."""
    return Locale.get_closest(*locale_codes)


def set_default_locale(code: str) -> None:
    """Make ``code`` the locale of the strings in the code (and the fallback of :func:`get`).

    It needs no translation file: it is supported from now on.
    """
    global _default_locale
    _default_locale = code
    _set_supported()


def _set_supported() -> None:
    global _supported_locales
    _supported_locales = frozenset([*_translations, _default_locale])
    Locale._cache.clear()
    gen_log.debug("Supported locales: %s", sorted(_supported_locales))


def load_translations(directory: str, encoding: str | None = None) -> None:
    """Load the CSV translations in ``directory``: one ``LOCALE.csv`` per locale.

    Each row is ``source,translation[,plural]`` in the csv module's default
    ("excel") dialect, cells stripped of surrounding spaces; the third cell
    is ``singular``, ``plural``, or ``unknown`` / empty / absent for a string
    that does not depend on a count. A source with a count has two rows,
    one ``singular`` and one ``plural``; :meth:`Locale.translate` picks by
    ``count``. Placeholders are Python's named ones (``%(name)s``)::

        "Sign in","Connexion"
        "%(count)d new message","%(count)d nouveau message","singular"
        "%(count)d new messages","%(count)d nouveaux messages","plural"

    Without ``encoding`` each file's is detected from its byte-order mark:
    UTF-16 with one, else UTF-8 (a UTF-8 BOM, as Excel writes, is dropped).
    """
    global _translations, _use_gettext
    loaded: dict[str, dict[str, dict[str, str]]] = {}
    for file_name in sorted(os.listdir(directory)):
        if not file_name.endswith(".csv"):
            continue
        path = os.path.join(directory, file_name)
        code = file_name[: -len(".csv")]
        if not _LOCALE_CODE.match(code):
            gen_log.error("Unrecognized locale %r (path: %s)", code, path)
            continue
        try:
            loaded[code] = _read_csv_translations(path, encoding or _detect_encoding(path))
        except (OSError, UnicodeError, csv.Error) as e:
            gen_log.error("Cannot load translations from %s: %s", path, e)
    _translations = loaded
    _use_gettext = False
    _set_supported()


def _detect_encoding(path: str) -> str:
    with open(path, "rb") as f:
        start = f.read(2)
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"  # the codec reads the BOM and drops it
    return "utf-8-sig"  # UTF-8, with or without Excel's BOM


def _read_csv_translations(path: str, encoding: str) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    with open(path, encoding=encoding, newline="") as f:
        for line_number, row in enumerate(csv.reader(f), 1):
            if len(row) < 2:
                continue
            source, translation = row[0].strip(), row[1].strip()
            marker = (row[2].strip() if len(row) > 2 else "") or "unknown"
            if marker not in _PLURAL_MARKERS:
                gen_log.error(
                    "Unrecognized plural indicator %r in %s line %d",
                    marker,
                    os.path.basename(path),
                    line_number,
                )
                continue
            table.setdefault(marker, {})[source] = translation
    return table


def load_gettext_translations(directory: str, domain: str) -> None:
    """Load the gettext catalogues ``directory/LOCALE/LC_MESSAGES/domain.mo``.

    Make them with the gettext tools: ``xgettext --language=Python
    --keyword=_:1,2 --keyword=pgettext:1c,2 --keyword=pgettext:1c,2,3 ...``
    to extract the strings, ``msgmerge`` to update a translation, and
    ``msgfmt domain.po -o DIRECTORY/pt_BR/LC_MESSAGES/domain.mo`` to compile it.
    """
    global _translations, _use_gettext
    loaded: dict[str, gettext.NullTranslations] = {}
    pattern = os.path.join(glob.escape(directory), "*", "LC_MESSAGES", glob.escape(domain) + ".mo")
    for path in sorted(glob.glob(pattern)):
        code = os.path.basename(os.path.dirname(os.path.dirname(path)))
        try:
            # gettext's lookup, so pt_BR falls back to a pt catalogue beside it.
            loaded[code] = gettext.translation(domain, directory, languages=[code])
        except Exception as e:  # a corrupt catalogue: skip it, load the rest
            gen_log.error("Cannot load translation for '%s': %s", code, e)
    _translations = loaded
    _use_gettext = True
    _set_supported()


def get_supported_locales() -> Iterable[str]:
    """The codes of the loaded translations, and the default locale's."""
    return _supported_locales


class Locale:
    """A language to speak to one user in: translation and formatting.

    Get one with :func:`get` / :meth:`get_closest` (or :meth:`get` for an
    exact, supported code), not by calling the class. ``code`` is its code,
    ``name`` its name in its own language (:data:`LOCALE_NAMES`, "Unknown"
    if absent) and ``rtl`` whether it is written right to left.
    """

    _cache: dict[str, Locale] = {}

    @classmethod
    def get_closest(cls, *locale_codes: str) -> Locale:
        """The first of ``locale_codes`` that is supported, exactly (``pt_BR``)
        or by its language alone (``pt``); else the default locale."""
        for code in locale_codes:
            if not code:
                continue
            parts = code.replace("-", "_").split("_")
            if len(parts) > 2:
                continue
            language = parts[0].lower()
            exact = f"{language}_{parts[1].upper()}" if len(parts) == 2 else parts[0]
            if exact in _supported_locales:
                return cls.get(exact)
            if language in _supported_locales:
                return cls.get(language)
        return cls.get(_default_locale)

    @classmethod
    def get(cls, code: str) -> Locale:
        """The Locale for ``code``, which must be supported (AssertionError if not)."""
        locale = cls._cache.get(code)
        if locale is None:
            if code not in _supported_locales:
                raise AssertionError(
                    f"locale {code!r} is not supported; supported: {sorted(_supported_locales)}"
                )
            translations = _translations.get(code)
            if translations is None:
                locale = CSVLocale(code, {})
            elif _use_gettext:
                locale = GettextLocale(code, translations)
            else:
                locale = CSVLocale(code, translations)
            cls._cache[code] = locale
        return locale

    def __init__(self, code: str) -> None:
        self.code = code
        self.name = LOCALE_NAMES.get(code, {}).get("name", "Unknown")
        self.rtl = code.startswith(("fa", "ar", "he"))
        _ = self.translate
        # Written out so that xgettext finds each name.
        self._months = [
            _("January"),
            _("February"),
            _("March"),
            _("April"),
            _("May"),
            _("June"),
            _("July"),
            _("August"),
            _("September"),
            _("October"),
            _("November"),
            _("December"),
        ]
        self._weekdays = [
            _("Monday"),
            _("Tuesday"),
            _("Wednesday"),
            _("Thursday"),
            _("Friday"),
            _("Saturday"),
            _("Sunday"),
        ]

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        """``message`` in this locale; with ``plural_message`` (and then ``count``,
        required), the form for ``count``: the plural one unless ``count == 1``
        (gettext catalogues apply their language's own rule)."""
        raise NotImplementedError()

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        """:meth:`translate`, for ``message`` as meant in ``context`` ("law" vs
        "direction" for "right"); only gettext catalogues carry contexts."""
        raise NotImplementedError()

    def format_date(
        self,
        date: int | float | datetime.datetime,
        gmt_offset: int = 0,
        relative: bool = True,
        shorter: bool = False,
        full_format: bool = False,
    ) -> str:
        """``date`` (a timestamp or datetime; naive means UTC) for a reader
        ``gmt_offset`` minutes west of UTC.

        ``relative`` (default): "1 second ago" up to "23 hours ago" for the
        last day, then "yesterday at 3:05 pm", a weekday for the last five
        days, "March 4 at ..." within 11 months, then "March 4, 2020 at ...".
        ``relative=False`` starts at the time alone for today. ``shorter``
        drops the time from the day forms; ``full_format`` always gives the
        full date. English uses a 12-hour clock, most locales 24 hours.
        """
        if isinstance(date, (int, float)):
            date = datetime.datetime.fromtimestamp(date, datetime.timezone.utc)
        elif date.tzinfo is None:
            date = date.replace(tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        if date > now:
            if relative and (date - now).total_seconds() < 60:
                date = now  # a clock a little ahead: say "just now", not a date
            else:
                full_format = True
        offset = datetime.timedelta(minutes=gmt_offset)
        local_date = date - offset
        local_yesterday = now - offset - datetime.timedelta(hours=24)
        age = now - date
        days, seconds = age.days, age.seconds
        _ = self.translate

        fmt = None
        if not full_format:
            if relative and days == 0:
                if seconds < 50:
                    return _("1 second ago", "%(seconds)d seconds ago", seconds) % {
                        "seconds": seconds
                    }
                if seconds < 50 * 60:
                    minutes = round(seconds / 60)
                    return _("1 minute ago", "%(minutes)d minutes ago", minutes) % {
                        "minutes": minutes
                    }
                hours = round(seconds / 3600)
                return _("1 hour ago", "%(hours)d hours ago", hours) % {"hours": hours}
            if days == 0:
                fmt = _("%(time)s")
            elif days == 1 and relative and local_date.day == local_yesterday.day:
                fmt = _("yesterday") if shorter else _("yesterday at %(time)s")
            elif days < 5:
                fmt = _("%(weekday)s") if shorter else _("%(weekday)s at %(time)s")
            elif days < 334:  # not "March 4" for a March 4 almost a year ago
                fmt = (
                    _("%(month_name)s %(day)s")
                    if shorter
                    else _("%(month_name)s %(day)s at %(time)s")
                )
        if fmt is None:
            fmt = (
                _("%(month_name)s %(day)s, %(year)s")
                if shorter
                else _("%(month_name)s %(day)s, %(year)s at %(time)s")
            )
        return fmt % {
            "month_name": self._months[local_date.month - 1],
            "weekday": self._weekdays[local_date.weekday()],
            "day": str(local_date.day),
            "year": str(local_date.year),
            "time": self._clock(local_date),
        }

    def _clock(self, moment: datetime.datetime) -> str:
        hour12 = moment.hour % 12 or 12
        if self.code in ("en", "en_US"):
            return f"{hour12}:{moment.minute:02d} {'pm' if moment.hour >= 12 else 'am'}"
        if self.code == "zh_CN":
            half = "\u4e0b\u5348" if moment.hour >= 12 else "\u4e0a\u5348"  # pm / am
            return f"{half}{hour12}:{moment.minute:02d}"
        return f"{moment.hour}:{moment.minute:02d}"

    def format_day(self, date: datetime.datetime, gmt_offset: int = 0, dow: bool = True) -> str:
        """The day of ``date``: "Monday, January 22", or "January 22" with ``dow=False``."""
        local_date = date - datetime.timedelta(minutes=gmt_offset)
        _ = self.translate
        fields = {
            "month_name": self._months[local_date.month - 1],
            "weekday": self._weekdays[local_date.weekday()],
            "day": str(local_date.day),
        }
        if dow:
            return _("%(weekday)s, %(month_name)s %(day)s") % fields
        return _("%(month_name)s %(day)s") % fields

    def list(self, parts: Any) -> str:
        """``parts`` as a phrase: "A, B and C", "A and B", "A" (or "" for none)."""
        _ = self.translate
        if len(parts) == 0:
            return ""
        if len(parts) == 1:
            return str(parts[0])
        comma = " \u0648 " if self.code.startswith("fa") else ", "
        return _("%(commas)s and %(last)s") % {
            "commas": comma.join(parts[:-1]),
            "last": parts[-1],
        }

    def friendly_number(self, value: int) -> str:
        """``value`` with thousands separated ("1,234,567") in English; plain elsewhere."""
        if self.code not in ("en", "en_US"):
            return str(value)
        text = str(value)
        sign = "-" if text.startswith("-") else ""
        digits = text.lstrip("-")
        groups = []
        while digits:
            groups.append(digits[-3:])
            digits = digits[:-3]
        return sign + ",".join(reversed(groups))


class CSVLocale(Locale):
    """A locale translated by :func:`load_translations`' CSV tables."""

    def __init__(self, code: str, translations: dict[str, dict[str, str]]) -> None:
        self.translations = translations
        super().__init__(code)

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        if plural_message is None:
            table = self.translations.get("unknown", {})
        else:
            if count is None:
                raise TypeError("translate() with a plural_message needs a count")
            if count != 1:
                message = plural_message
                table = self.translations.get("plural", {})
            else:
                table = self.translations.get("singular", {})
        return table.get(message, message)

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        if self.translations:
            gen_log.warning("pgettext is not supported by CSVLocale")
        return self.translate(message, plural_message, count)


class GettextLocale(Locale):
    """A locale translated by a gettext catalogue (:func:`load_gettext_translations`)."""

    def __init__(self, code: str, translations: gettext.NullTranslations) -> None:
        # Before Locale.__init__, which translates the month names through them.
        self.ngettext = translations.ngettext
        self.gettext = translations.gettext
        super().__init__(code)

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        if plural_message is None:
            return self.gettext(message)
        if count is None:
            raise TypeError("translate() with a plural_message needs a count")
        return self.ngettext(message, plural_message, count)

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        """``pgettext("law", "right")``, ``pgettext("stick", "club", "clubs", n)``.

        A message with no translation in ``context`` comes back as it is; a
        plural one with no translation in ``context`` is translated without it.
        """
        key = f"{context}{CONTEXT_SEPARATOR}{message}"
        if plural_message is None:
            result = self.gettext(key)
            return message if CONTEXT_SEPARATOR in result else result
        if count is None:
            raise TypeError("pgettext() with a plural_message needs a count")
        plural_key = f"{context}{CONTEXT_SEPARATOR}{plural_message}"
        result = self.ngettext(key, plural_key, count)
        if CONTEXT_SEPARATOR in result:  # gettext gave the key back: not in the catalogue
            return self.ngettext(message, plural_message, count)
        return result


# Each locale's name in English and in itself, for a language menu.
LOCALE_NAMES: dict[str, dict[str, str]] = {
    code: {"name_en": name_en, "name": name}
    for code, name_en, name in [
        ("af_ZA", "Afrikaans", "Afrikaans"),
        ("am_ET", "Amharic", "\u12a0\u121b\u122d\u129b"),
        ("ar_AR", "Arabic", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629"),
        ("bg_BG", "Bulgarian", "\u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438"),
        ("bn_IN", "Bengali", "\u09ac\u09be\u0982\u09b2\u09be"),
        ("bs_BA", "Bosnian", "Bosanski"),
        ("ca_ES", "Catalan", "Catal\u00e0"),
        ("cs_CZ", "Czech", "\u010ce\u0161tina"),
        ("cy_GB", "Welsh", "Cymraeg"),
        ("da_DK", "Danish", "Dansk"),
        ("de_DE", "German", "Deutsch"),
        ("el_GR", "Greek", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac"),
        ("en_GB", "English (UK)", "English (UK)"),
        ("en_US", "English (US)", "English (US)"),
        ("es_ES", "Spanish (Spain)", "Espa\u00f1ol (Espa\u00f1a)"),
        ("es_LA", "Spanish", "Espa\u00f1ol"),
        ("et_EE", "Estonian", "Eesti"),
        ("eu_ES", "Basque", "Euskara"),
        ("fa_IR", "Persian", "\u0641\u0627\u0631\u0633\u06cc"),
        ("fi_FI", "Finnish", "Suomi"),
        ("fr_CA", "French (Canada)", "Fran\u00e7ais (Canada)"),
        ("fr_FR", "French", "Fran\u00e7ais"),
        ("ga_IE", "Irish", "Gaeilge"),
        ("gl_ES", "Galician", "Galego"),
        ("he_IL", "Hebrew", "\u05e2\u05d1\u05e8\u05d9\u05ea"),
        ("hi_IN", "Hindi", "\u0939\u093f\u0928\u094d\u0926\u0940"),
        ("hr_HR", "Croatian", "Hrvatski"),
        ("hu_HU", "Hungarian", "Magyar"),
        ("id_ID", "Indonesian", "Bahasa Indonesia"),
        ("is_IS", "Icelandic", "\u00cdslenska"),
        ("it_IT", "Italian", "Italiano"),
        ("ja_JP", "Japanese", "\u65e5\u672c\u8a9e"),
        ("ko_KR", "Korean", "\ud55c\uad6d\uc5b4"),
        ("lt_LT", "Lithuanian", "Lietuvi\u0173"),
        ("lv_LV", "Latvian", "Latvie\u0161u"),
        ("mk_MK", "Macedonian", "\u041c\u0430\u043a\u0435\u0434\u043e\u043d\u0441\u043a\u0438"),
        ("ml_IN", "Malayalam", "\u0d2e\u0d32\u0d2f\u0d3e\u0d33\u0d02"),
        ("ms_MY", "Malay", "Bahasa Melayu"),
        ("nb_NO", "Norwegian (bokmal)", "Norsk (bokm\u00e5l)"),
        ("nl_NL", "Dutch", "Nederlands"),
        ("nn_NO", "Norwegian (nynorsk)", "Norsk (nynorsk)"),
        ("pa_IN", "Punjabi", "\u0a2a\u0a70\u0a1c\u0a3e\u0a2c\u0a40"),
        ("pl_PL", "Polish", "Polski"),
        ("pt_BR", "Portuguese (Brazil)", "Portugu\u00eas (Brasil)"),
        ("pt_PT", "Portuguese (Portugal)", "Portugu\u00eas (Portugal)"),
        ("ro_RO", "Romanian", "Rom\u00e2n\u0103"),
        ("ru_RU", "Russian", "\u0420\u0443\u0441\u0441\u043a\u0438\u0439"),
        ("sk_SK", "Slovak", "Sloven\u010dina"),
        ("sl_SI", "Slovenian", "Sloven\u0161\u010dina"),
        ("sq_AL", "Albanian", "Shqip"),
        ("sr_RS", "Serbian", "\u0421\u0440\u043f\u0441\u043a\u0438"),
        ("sv_SE", "Swedish", "Svenska"),
        ("sw_KE", "Swahili", "Kiswahili"),
        ("ta_IN", "Tamil", "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd"),
        ("te_IN", "Telugu", "\u0c24\u0c46\u0c32\u0c41\u0c17\u0c41"),
        ("th_TH", "Thai", "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22"),
        ("tl_PH", "Filipino", "Filipino"),
        ("tr_TR", "Turkish", "T\u00fcrk\u00e7e"),
        ("uk_UA", "Ukrainian", "\u0423\u043a\u0440\u0430\u0457\u043d\u0441\u044c\u043a\u0430"),
        ("vi_VN", "Vietnamese", "Ti\u1ebfng Vi\u1ec7t"),
        ("zh_CN", "Chinese (Simplified)", "\u4e2d\u6587(\u7b80\u4f53)"),
        ("zh_TW", "Chinese (Traditional)", "\u4e2d\u6587(\u7e41\u9ad4)"),
    ]
}
"""``{code: {"name_en": ..., "name": ...}}``: each locale's name in English and in itself."""
