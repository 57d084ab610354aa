import importlib.metadata
import inspect
import textwrap
import warnings

import pytest

from charanim import hookspecs
from charanim.errors import UnknownNameError
from charanim.plugins import PluginLoadWarning, Plugins


def _entry_point(name, module):
    return importlib.metadata.EntryPoint(name=name, value=module, group="charanim")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """Plugin modules written to a temp folder on sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name, body):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
        return name

    return write


GOOD = """
    import charanim
    from charanim.conditioning import Condition, Conditioner, InjectionSite

    class Depth(Conditioner):
        name, kind, site, description = "depth", "depth", InjectionSite.IN_CONTEXT, "test"
        def prepare(self, driving, reference, spec):
            raise NotImplementedError

    @charanim.hookimpl
    def charanim_register_conditioners(register):
        register(Depth)
"""


def test_builtins_register_through_the_same_hooks():
    plugins = Plugins(entry_points=[])
    assert set(plugins.backbones.names()) >= {"tiny", "wan-i2v"}
    assert plugins.infos["charanim"].builtin
    assert plugins.infos["charanim"].registered["backbone"] == [
        "tiny",
        "wan-i2v",
        "wan-animate",
        "wan-animate-2",
    ]


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(plugin_dir):
    plugin_dir("good_plugin", GOOD)
    plugin_dir("broken_plugin", "raise RuntimeError('boom at import')\n")
    with pytest.warns(PluginLoadWarning, match="boom at import"):
        plugins = Plugins(
            entry_points=[_entry_point("broken", "broken_plugin"), _entry_point("good", "good_plugin")]
        )
    assert plugins.infos["broken"].errors == ["import failed: RuntimeError: boom at import"]
    assert "depth" in plugins.conditioners
    assert plugins.infos["good"].registered == {"conditioner": ["depth"]}


def test_a_plugin_that_fails_while_registering_is_reported(plugin_dir):
    plugin_dir(
        "bad_register",
        """
        import charanim

        @charanim.hookimpl
        def charanim_register_conditioners(register):
            register(object)   # not a Conditioner
        """,
    )
    plugins = Plugins(entry_points=[_entry_point("bad", "bad_register")])
    from charanim.plugins import _validate_conditioner

    plugins.set_validator("conditioner", _validate_conditioner)
    with pytest.warns(PluginLoadWarning, match="not a subclass"):
        assert len(plugins.conditioners) == 0
    assert "registering conditioners failed" in plugins.infos["bad"].errors[0]


def test_environment_restricts_what_loads(plugin_dir):
    plugin_dir("good_plugin", GOOD)
    eps = [_entry_point("good", "good_plugin")]
    assert "good" in Plugins(entry_points=eps, environ={}).infos
    assert "good" not in Plugins(entry_points=eps, environ={"CHARANIM_PLUGINS": ""}).infos
    with pytest.warns(PluginLoadWarning, match="CHARANIM_PLUGINS names other, which no installed plugin is"):
        assert "good" in Plugins(entry_points=eps, environ={"CHARANIM_PLUGINS": "good, other"}).infos
    assert "good" not in Plugins(entry_points=eps, environ={"CHARANIM_DISABLE_PLUGINS": "good"}).infos
    # names compare as packaging compares them: the conditioner 'audio-face' is the entry point 'audio_face'
    plugin_dir("audio_face_plugin", GOOD)
    eps.append(_entry_point("audio_face", "audio_face_plugin"))
    for spelling in ("audio-face", "Audio_Face", "audio.face"):
        loaded = Plugins(entry_points=eps, environ={"CHARANIM_DISABLE_PLUGINS": spelling}).infos
        assert "audio_face" not in loaded and "good" in loaded
    # builtins always load
    assert "charanim" in Plugins(entry_points=eps, environ={"CHARANIM_PLUGINS": ""}).infos


def test_name_conflicts_keep_the_first_registration(plugin_dir):
    plugin_dir("good_plugin", GOOD)
    plugin_dir("again_plugin", GOOD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = Plugins(
            entry_points=[_entry_point("first", "good_plugin"), _entry_point("second", "again_plugin")]
        )
        entry = plugins.conditioners.entry("depth")
    assert entry.plugin == "first"
    assert any("already registered by 'first'" in str(w.message) for w in caught)


def test_unknown_names_list_the_known_ones():
    plugins = Plugins(entry_points=[])
    with pytest.raises(
        UnknownNameError,
        match="Unknown backbone 'nope'. Known backbones: tiny, wan-animate, wan-animate-2, wan-i2v.",
    ):
        plugins.backbones.get("nope")


def test_every_hook_is_documented():
    specs = [
        name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("charanim_")
    ]
    assert len(specs) == 6
    for name in specs:
        function = getattr(hookspecs, name)
        assert hasattr(function, "charanim_spec"), f"{name} is not marked as a hookspec"
        doc = inspect.getdoc(function) or ""
        assert len(doc) > 80, f"{name} needs a real docstring"
        parameter = next(iter(inspect.signature(function).parameters))
        assert parameter in doc or parameter == "register" and "register(" in doc
    assert set(hookspecs.REGISTRY_HOOKS.values()) == set(specs) - {"charanim_register_commands"}


def test_plugin_commands_hook_adds_a_subcommand(plugin_dir):
    plugin_dir(
        "cmd_plugin",
        """
        import charanim

        @charanim.hookimpl
        def charanim_register_commands(app):
            @app.command(name="hello")
            def hello():
                print("hello from a plugin")
        """,
    )
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()

    @app.callback()
    def root():
        pass

    Plugins(entry_points=[_entry_point("cmd", "cmd_plugin")]).add_commands(app)
    assert CliRunner().invoke(app, ["hello"]).output.strip() == "hello from a plugin"


def test_a_conditioner_may_only_say_it_drives_regions_charanim_can_locate():
    from charanim.conditioning import Conditioner, InjectionSite, validate_conditioner_class

    class Voice(Conditioner):
        name, kind, site, feature_dim, needs = "voice", "audio", InjectionSite.TOKENS, 4, frozenset({"audio"})
        drives = frozenset({"face"})

        def prepare(self, driving, reference, spec):
            raise NotImplementedError

    validate_conditioner_class(Voice)

    class Tail(Voice):
        name, drives = "tail", frozenset({"tail"})

    with pytest.raises(TypeError, match=r"unknown regions in drives \['tail'\] \(known: \['face'\]\)"):
        validate_conditioner_class(Tail)
