"""reactor.locale: CSV and gettext translations, choosing a locale, formatting."""

from __future__ import annotations

import codecs
import datetime
import logging
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import reactor.locale
from reactor.locale import CSVLocale, GettextLocale, Locale
from reactor.testing import ExpectLog

UTC = datetime.timezone.utc


@pytest.fixture(autouse=True)
def restore_locale_state() -> Iterator[None]:
    """Translations are process-wide: each test leaves them as it found them."""
    module = reactor.locale
    saved = (
        module._translations,
        module._supported_locales,
        module._use_gettext,
        module._default_locale,
    )
    yield
    (
        module._translations,
        module._supported_locales,
        module._use_gettext,
        module._default_locale,
    ) = saved
    Locale._cache.clear()


def write_csv(directory: Path, code: str, text: str, encoding: str = "utf-8") -> Path:
    path = directory / f"{code}.csv"
    path.write_bytes(text.encode(encoding))
    return path


FR_CSV = """\
"Sign in","Connexion"
"%(count)d new message","%(count)d nouveau message","singular"
"%(count)d new messages","%(count)d nouveaux messages","plural"
"January","janvier"
"Monday","lundi"
"%(weekday)s, %(month_name)s %(day)s","%(weekday)s %(day)s %(month_name)s"
"%(commas)s and %(last)s","%(commas)s et %(last)s"
"""


# -- CSV -------------------------------------------------------------------------


def test_csv_translations(tmp_path: Path) -> None:
    write_csv(tmp_path, "fr", FR_CSV)
    reactor.locale.load_translations(str(tmp_path))
    assert set(reactor.locale.get_supported_locales()) == {"fr", "en_US"}
    fr = reactor.locale.get("fr_FR")
    assert isinstance(fr, CSVLocale) and fr.code == "fr"
    assert fr.translate("Sign in") == "Connexion"
    assert fr.translate("Not translated") == "Not translated"
    one, many = "%(count)d new message", "%(count)d new messages"
    assert fr.translate(one, many, 1) % {"count": 1} == "1 nouveau message"
    assert fr.translate(one, many, 3) % {"count": 3} == "3 nouveaux messages"
    assert fr.translate(one, many, 0) % {"count": 0} == "0 nouveaux messages"
    # The locale's own words come through its translations.
    assert fr.format_day(datetime.datetime(2024, 1, 1)) == "lundi 1 janvier"
    assert fr.list(["a", "b", "c"]) == "a, b et c"
    # The default locale needs no file, and translates nothing.
    en = reactor.locale.get("en_US")
    assert en.translate("Sign in") == "Sign in"


def test_csv_cells_are_stripped_and_short_rows_ignored(tmp_path: Path) -> None:
    write_csv(tmp_path, "de_DE", '"Yes"," Ja "\n\n"lonely"\n"No","Nein",""\n')
    reactor.locale.load_translations(str(tmp_path))
    de = reactor.locale.get("de_DE")
    assert de.translate("Yes") == "Ja" and de.translate("No") == "Nein"
    assert de.translate("lonely") == "lonely"


def test_csv_bad_rows_and_names_are_logged_and_skipped(tmp_path: Path) -> None:
    write_csv(tmp_path, "es", '"one","uno","dual"\n"two","dos"\n')
    write_csv(tmp_path, "Not-A-Locale", '"one","x"\n')
    (tmp_path / "notes.txt").write_text("not a translation")
    with (
        ExpectLog("reactor.general", r"Unrecognized plural indicator 'dual' in es.csv line 1"),
        ExpectLog("reactor.general", r"Unrecognized locale 'Not-A-Locale'"),
    ):
        reactor.locale.load_translations(str(tmp_path))
    assert set(reactor.locale.get_supported_locales()) == {"es", "en_US"}
    es = reactor.locale.get("es")
    assert es.translate("two") == "dos" and es.translate("one") == "one"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),  # as Excel writes it
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
def test_csv_encoding_is_detected_from_the_bom(tmp_path: Path, encoding: str, bom: bytes) -> None:
    (tmp_path / "ru_RU.csv").write_bytes(bom + '"Hello","Привет"\n'.encode(encoding))
    reactor.locale.load_translations(str(tmp_path))
    assert reactor.locale.get("ru-ru").translate("Hello") == "Привет"


def test_csv_encoding_is_detected_for_each_file(tmp_path: Path) -> None:
    # One UTF-16 file does not make the next file UTF-16 too.
    (tmp_path / "aa.csv").write_bytes(codecs.BOM_UTF16_LE + '"Hi","Ä"\n'.encode("utf-16-le"))
    write_csv(tmp_path, "bb", '"Hi","Ö"\n')
    reactor.locale.load_translations(str(tmp_path))
    assert reactor.locale.get("aa").translate("Hi") == "Ä"
    assert reactor.locale.get("bb").translate("Hi") == "Ö"


def test_csv_explicit_encoding(tmp_path: Path) -> None:
    write_csv(tmp_path, "pt_BR", '"Yes","Sim, é"\n', encoding="latin-1")
    reactor.locale.load_translations(str(tmp_path), encoding="latin-1")
    assert reactor.locale.get("pt_BR").translate("Yes") == "Sim, é"


def test_an_undecodable_file_is_logged_and_the_rest_loads(tmp_path: Path) -> None:
    (tmp_path / "it.csv").write_bytes(b'"Yes","S\xec"\n')  # latin-1, read as UTF-8
    write_csv(tmp_path, "nl", '"Yes","Ja"\n')
    with ExpectLog("reactor.general", r"Cannot load translations from .*it\.csv"):
        reactor.locale.load_translations(str(tmp_path))
    assert set(reactor.locale.get_supported_locales()) == {"nl", "en_US"}
    assert reactor.locale.get("it").code == "en_US"


def test_loading_replaces_what_was_loaded(tmp_path: Path) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir()
    second.mkdir()
    write_csv(first, "fr", '"Yes","Oui"\n')
    write_csv(second, "fr", '"Yes","Ouais"\n')
    reactor.locale.load_translations(str(first))
    assert reactor.locale.get("fr").translate("Yes") == "Oui"
    reactor.locale.load_translations(str(second))
    assert reactor.locale.get("fr").translate("Yes") == "Ouais"


def test_csv_pgettext_ignores_the_context_with_a_warning(tmp_path: Path) -> None:
    write_csv(tmp_path, "fr", FR_CSV)
    reactor.locale.load_translations(str(tmp_path))
    with ExpectLog("reactor.general", "pgettext is not supported by CSVLocale"):
        assert reactor.locale.get("fr").pgettext("auth", "Sign in") == "Connexion"
    # The default locale has no table: nothing to warn about.
    with ExpectLog("reactor.general", "pgettext", required=False) as log:
        assert reactor.locale.get("en_US").pgettext("auth", "Sign in") == "Sign in"
    assert log.logged == 0


# -- choosing a locale --------------------------------------------------------------


def test_get_closest(tmp_path: Path) -> None:
    for code in ("fr", "pt_BR", "zh_TW"):
        write_csv(tmp_path, code, '"Yes","x"\n')
    reactor.locale.load_translations(str(tmp_path))
    get = reactor.locale.get
    assert get("pt-br").code == "pt_BR"
    assert get("PT_br").code == "pt_BR"
    assert get("fr_CA").code == "fr"  # the language alone
    assert get("FR").code == "fr"  # the language, in any case
    assert get("de_DE", "", "zh-tw", "fr").code == "zh_TW"  # the first supported wins
    assert get("zh_Hant_TW").code == "en_US"  # three parts: skipped
    assert get().code == "en_US"
    assert Locale.get_closest("pt_PT").code == "en_US"


def test_set_default_locale(tmp_path: Path) -> None:
    write_csv(tmp_path, "fr", '"Yes","Oui"\n')
    reactor.locale.load_translations(str(tmp_path))
    reactor.locale.set_default_locale("de_DE")
    assert set(reactor.locale.get_supported_locales()) == {"fr", "de_DE"}
    assert reactor.locale.get("ja").code == "de_DE"


def test_get_of_an_unsupported_code_raises() -> None:
    with pytest.raises(AssertionError, match="'xx_XX' is not supported"):
        Locale.get("xx_XX")


def test_names_and_direction() -> None:
    assert reactor.locale.LOCALE_NAMES["de_DE"] == {"name_en": "German", "name": "Deutsch"}
    assert len(reactor.locale.LOCALE_NAMES) >= 60
    assert CSVLocale("ja_JP", {}).name == "日本語"
    assert CSVLocale("xx", {}).name == "Unknown"
    assert CSVLocale("he_IL", {}).rtl and CSVLocale("ar_AR", {}).rtl and CSVLocale("fa", {}).rtl
    assert not CSVLocale("en_US", {}).rtl


# -- gettext --------------------------------------------------------------------------

PL_PO = r"""
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && "
"(n%100<10 || n%100>=20) ? 1 : 2);\n"

msgid "Sign in"
msgstr "Zaloguj się"

msgid "%(count)d file"
msgid_plural "%(count)d files"
msgstr[0] "%(count)d plik"
msgstr[1] "%(count)d pliki"
msgstr[2] "%(count)d plików"

msgctxt "law"
msgid "right"
msgstr "prawo"

msgctxt "direction"
msgid "right"
msgstr "w prawo"

msgctxt "golf"
msgid "club"
msgid_plural "clubs"
msgstr[0] "kij"
msgstr[1] "kije"
msgstr[2] "kijów"

msgid "January"
msgstr "styczeń"
"""

PL_CATALOGUE: dict[str, str | list[str]] = {
    "": (
        "Content-Type: text/plain; charset=UTF-8\n"
        "Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && "
        "(n%100<10 || n%100>=20) ? 1 : 2);\n"
    ),
    "Sign in": "Zaloguj się",
    "%(count)d file\0%(count)d files": ["%(count)d plik", "%(count)d pliki", "%(count)d plików"],
    "law\x04right": "prawo",
    "direction\x04right": "w prawo",
    "golf\x04club\0clubs": ["kij", "kije", "kijów"],
    "January": "styczeń",
}


def write_mo(path: Path, catalogue: dict[str, str | list[str]]) -> None:
    """A GNU .mo file, as msgfmt writes one: the header, then the two string
    tables (sorted by original), then the strings; no hash table."""
    entries = sorted(
        (key.encode(), ("\0".join(v) if isinstance(v, list) else v).encode())
        for key, v in catalogue.items()
    )
    count = len(entries)
    originals_at = 7 * 4
    translations_at = originals_at + count * 8
    data_at = translations_at + count * 8
    tables, data = [b"", b""], b""
    for column in (0, 1):
        for entry in entries:
            tables[column] += struct.pack("<2I", len(entry[column]), data_at + len(data))
            data += entry[column] + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, originals_at, translations_at, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + tables[0] + tables[1] + data)


@pytest.fixture(params=["msgfmt", "written"])
def gettext_tree(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A gettext tree with a Polish catalogue for the domain "app": compiled by
    Debian's msgfmt, and written by write_mo (so the tests run where gettext is
    not installed, and check write_mo against msgfmt where it is)."""
    mo = tmp_path / "pl_PL" / "LC_MESSAGES" / "app.mo"
    if request.param == "msgfmt":
        msgfmt = shutil.which("msgfmt")
        if msgfmt is None:
            pytest.skip("msgfmt (Debian's gettext) is not installed; the written .mo still runs")
        po = tmp_path / "app.po"
        po.write_text(PL_PO, encoding="utf-8")
        mo.parent.mkdir(parents=True)
        subprocess.run([msgfmt, str(po), "-o", str(mo)], check=True, timeout=30)
    else:
        write_mo(mo, PL_CATALOGUE)
    return tmp_path


def test_gettext_translations(gettext_tree: Path) -> None:
    reactor.locale.load_gettext_translations(str(gettext_tree), "app")
    assert set(reactor.locale.get_supported_locales()) == {"pl_PL", "en_US"}
    pl = reactor.locale.get("pl-PL")
    assert isinstance(pl, GettextLocale)
    assert pl.translate("Sign in") == "Zaloguj się"
    assert pl.translate("Missing") == "Missing"
    # Polish has three forms; the catalogue's Plural-Forms rule picks them.
    forms = {
        n: pl.translate("%(count)d file", "%(count)d files", n) % {"count": n}
        for n in (1, 3, 5, 22)
    }
    assert forms == {1: "1 plik", 3: "3 pliki", 5: "5 plików", 22: "22 pliki"}
    assert pl.format_day(datetime.datetime(2024, 1, 1), dow=False) == "styczeń 1"


def test_gettext_contexts(gettext_tree: Path) -> None:
    reactor.locale.load_gettext_translations(str(gettext_tree), "app")
    pl = reactor.locale.get("pl_PL")
    assert pl.pgettext("law", "right") == "prawo"
    assert pl.pgettext("direction", "right") == "w prawo"
    assert pl.pgettext("golf", "club", "clubs", 1) == "kij"
    assert pl.pgettext("golf", "club", "clubs", 5) == "kijów"
    # A context the catalogue lacks gives the message back, untranslated
    # (as in Tornado); with a plural, the translation without the context.
    assert pl.pgettext("politics", "right") == "right"
    assert pl.pgettext("politics", "Sign in") == "Sign in"
    assert pl.pgettext("stick", "%(count)d file", "%(count)d files", 2) == "%(count)d pliki"
    assert pl.pgettext("stick", "club", "clubs", 2) == "clubs"


def test_a_corrupt_catalogue_is_logged_and_the_rest_loads(gettext_tree: Path) -> None:
    broken = gettext_tree / "de_DE" / "LC_MESSAGES" / "app.mo"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\xde\x12\x04\x95 not a catalogue")
    with ExpectLog("reactor.general", r"Cannot load translation for 'de_DE'"):
        reactor.locale.load_gettext_translations(str(gettext_tree), "app")
    assert set(reactor.locale.get_supported_locales()) == {"pl_PL", "en_US"}


def test_gettext_other_domain_loads_nothing(gettext_tree: Path) -> None:
    reactor.locale.load_gettext_translations(str(gettext_tree), "other")
    assert set(reactor.locale.get_supported_locales()) == {"en_US"}
    assert reactor.locale.get("pl").code == "en_US"


# -- formatting ---------------------------------------------------------------------

EN = CSVLocale("en_US", {})


def ago(**span: float) -> datetime.datetime:
    return datetime.datetime.now(UTC) - datetime.timedelta(**span)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        ({"seconds": 1}, "1 second ago"),
        ({"seconds": 30}, "30 seconds ago"),
        ({"seconds": 55}, "1 minute ago"),
        ({"minutes": 30}, "30 minutes ago"),
        ({"minutes": 55}, "1 hour ago"),
        ({"hours": 5}, "5 hours ago"),
        ({"hours": 23, "minutes": 40}, "24 hours ago"),
    ],
)
def test_format_date_relative_within_a_day(span: dict[str, float], expected: str) -> None:
    assert EN.format_date(ago(**span)) == expected


def test_format_date_accepts_timestamps_and_naive_and_aware_datetimes() -> None:
    moment = ago(minutes=10)
    assert EN.format_date(moment.timestamp()) == "10 minutes ago"
    assert EN.format_date(int(moment.timestamp())) == "10 minutes ago"
    assert EN.format_date(moment.replace(tzinfo=None)) == "10 minutes ago"
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    assert EN.format_date(moment.astimezone(tokyo)) == "10 minutes ago"


def test_format_date_yesterday_and_days() -> None:
    # Midnight (UTC) of the day 24 hours ago is always "yesterday".
    day_before = ago(hours=24)
    midnight = day_before.replace(hour=0, minute=0, second=0, microsecond=0)
    assert EN.format_date(midnight) == "yesterday at 12:00 am"
    assert EN.format_date(midnight, shorter=True) == "yesterday"
    three_days = ago(days=3).replace(hour=15, minute=5)
    weekday = three_days.strftime("%A")
    assert EN.format_date(three_days) == f"{weekday} at 3:05 pm"
    assert EN.format_date(three_days, shorter=True) == weekday


def test_format_date_months_and_years() -> None:
    old = ago(days=40).replace(hour=9, minute=7)
    month_day = f"{old.strftime('%B')} {old.day}"
    assert EN.format_date(old) == f"{month_day} at 9:07 am"
    assert EN.format_date(old, shorter=True) == month_day
    assert EN.format_date(old, full_format=True) == f"{month_day}, {old.year} at 9:07 am"
    ancient = datetime.datetime(2001, 2, 3, 16, 45)
    assert EN.format_date(ancient) == "February 3, 2001 at 4:45 pm"
    assert EN.format_date(ancient, shorter=True) == "February 3, 2001"


def test_format_date_not_relative() -> None:
    moment = ago(minutes=5)
    expected = EN._clock(moment)
    assert EN.format_date(moment, relative=False) == expected


def test_format_date_in_the_future() -> None:
    # Slightly ahead (a skewed clock) reads as now; further ahead, the full date.
    assert EN.format_date(ago(seconds=-20)) == "0 seconds ago"
    later = datetime.datetime(2999, 12, 31, 23, 59)
    assert EN.format_date(later) == "December 31, 2999 at 11:59 pm"


def test_format_date_gmt_offset_and_clocks() -> None:
    moment = datetime.datetime(2001, 2, 3, 1, 30)
    # gmt_offset is minutes west of UTC: 120 shows the time two hours earlier.
    assert EN.format_date(moment, gmt_offset=120) == "February 2, 2001 at 11:30 pm"
    assert EN.format_date(moment, gmt_offset=-60) == "February 3, 2001 at 2:30 am"
    assert CSVLocale("de_DE", {}).format_date(moment) == "February 3, 2001 at 1:30"
    assert CSVLocale("zh_CN", {}).format_date(moment) == "February 3, 2001 at 上午1:30"
    evening = datetime.datetime(2001, 2, 3, 13, 5)
    assert CSVLocale("zh_CN", {}).format_date(evening) == "February 3, 2001 at 下午1:05"
    assert CSVLocale("fr", {}).format_date(evening) == "February 3, 2001 at 13:05"


def test_format_day() -> None:
    day = datetime.datetime(2024, 1, 22, 1, 0)
    assert EN.format_day(day) == "Monday, January 22"
    assert EN.format_day(day, dow=False) == "January 22"
    assert EN.format_day(day, gmt_offset=120) == "Sunday, January 21"


def test_list() -> None:
    assert EN.list([]) == ""
    assert EN.list(["A"]) == "A"
    assert EN.list(["A", "B"]) == "A and B"
    assert EN.list(["A", "B", "C"]) == "A, B and C"
    assert CSVLocale("fa_IR", {}).list(["A", "B", "C"]) == "A \u0648 B and C"


def test_friendly_number() -> None:
    assert EN.friendly_number(0) == "0"
    assert EN.friendly_number(999) == "999"
    assert EN.friendly_number(1000) == "1,000"
    assert EN.friendly_number(1234567) == "1,234,567"
    assert EN.friendly_number(-1234) == "-1,234"
    assert EN.friendly_number(-123) == "-123"
    assert CSVLocale("en", {}).friendly_number(10000) == "10,000"
    assert CSVLocale("de_DE", {}).friendly_number(1234567) == "1234567"


def test_translate_with_a_plural_needs_a_count() -> None:
    with pytest.raises(TypeError, match="count"):
        EN.translate("a file", "files")


def test_loading_logs_the_supported_locales(tmp_path: Path) -> None:
    write_csv(tmp_path, "fr", '"Yes","Oui"\n')
    with ExpectLog("reactor.general", r"Supported locales: \['en_US', 'fr'\]", level=logging.DEBUG):
        reactor.locale.load_translations(str(tmp_path))
