"""A data dir's own settings (business.env): written by init and demo, the weakest settings source."""
from __future__ import annotations

from pathlib import Path

from config.settings import load_settings
from supportlah.profile import DataDirKind, profile_kind, write_profile


def test_the_profile_names_its_kind_keeps_hand_added_lines_and_yields_to_the_environment(tmp_path: Path,
                                                                                       monkeypatch):
    data_dir = tmp_path / "data"
    assert profile_kind(data_dir) is None
    write_profile(data_dir, DataDirKind.BUSINESS, {"business_name": 'Kopi "Kia" Café', "business_languages": "English,Malay"})
    with (data_dir / "business.env").open("a", encoding="utf-8") as profile:
        profile.write("SUPPORTLAH_STAFF_CHAT_ID=-1001234\n")
    write_profile(data_dir, DataDirKind.BUSINESS,
                  {"business_name": 'Kopi "Kia" Café', "web_example_questions": ["Open on Sunday?", "Halal, yes?"]})
    assert profile_kind(data_dir) is DataDirKind.BUSINESS
    settings = load_settings(_env_file=None, data_dir=data_dir)
    assert settings.business_name == 'Kopi "Kia" Café' and settings.staff_chat_id == -1001234
    assert settings.business_languages == ["English", "Malay"]
    assert settings.web_example_questions == ["Open on Sunday?", "Halal, yes?"]
    monkeypatch.setenv("SUPPORTLAH_BUSINESS_NAME", "From the environment")
    assert load_settings(_env_file=None, data_dir=data_dir).business_name == "From the environment"
    write_profile(tmp_path / "demo", DataDirKind.DEMO, {"business_name": "Sample"})
    assert profile_kind(tmp_path / "demo") is DataDirKind.DEMO
