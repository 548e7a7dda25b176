defmodule Keyring.Adversarial.WorldReadableSecretsTest do
  # Issue 8, items 2 and 3: the store (which held keyring root keys) was
  # created 0644 in a 0755 data dir, readable by every local user; key files
  # were written through a predictable temp name that a planted link could
  # redirect. Now: data dir 0700, secret files 0600, wider modes narrowed
  # with a warning, links never followed.
  use ExUnit.Case, async: true

  import ExUnit.CaptureLog

  alias Keyring.Identity.KeyFile
  alias Keyring.Test.TmpDir

  defp mode(path), do: Bitwise.band(File.lstat!(path).mode, 0o7777)

  defp start(name, dir, opts \\ []) do
    start_supervised!({Keyring, [name: name, data_dir: dir] ++ opts})
    name
  end

  test "a fresh node keeps its data dir 0700 and every secret-bearing file 0600" do
    dir = Path.join(TmpDir.new(), "node")
    log = capture_log(fn -> start(SecretsFresh, dir) end)

    assert mode(dir) == 0o700
    assert mode(Path.join(dir, "store")) == 0o700
    assert mode(Path.join([dir, "store", "store.redb"])) == 0o600
    assert mode(Path.join(dir, "identity.key")) == 0o600
    # A new store is created 0600 from the start, so nothing is "repaired".
    refute log =~ "narrowed"
  end

  test "an old data dir readable by others is narrowed at start, with a warning" do
    dir = Path.join(TmpDir.new(), "old")
    start(SecretsOld, dir)
    stop_supervised!(SecretsOld)

    File.chmod!(dir, 0o755)
    File.chmod!(Path.join([dir, "store", "store.redb"]), 0o644)
    File.chmod!(Path.join(dir, "identity.key"), 0o640)

    log = capture_log(fn -> start(SecretsOld, dir) end)

    assert mode(dir) == 0o700
    assert mode(Path.join([dir, "store", "store.redb"])) == 0o600
    assert mode(Path.join(dir, "identity.key")) == 0o600
    assert log =~ "#{dir} had mode 0755"
    assert log =~ "store.redb had mode 0644"
    assert log =~ "identity.key had mode 0640"
  end

  test "a link planted as identity.key is refused, and what it points at is untouched" do
    dir = TmpDir.new()
    victim = Path.join(dir, "victim")
    File.write!(victim, "not a key")
    node_dir = Path.join(dir, "node")
    File.mkdir_p!(node_dir)
    File.chmod!(node_dir, 0o700)
    File.ln_s!(victim, Path.join(node_dir, "identity.key"))

    assert {:error, {:identity_file, {:symlink, _}}} =
             Keyring.start_link(name: SecretsLink, data_dir: node_dir)

    assert File.read!(victim) == "not a key"

    # A dangling link (to where the attacker wants the key written) is not
    # followed either: the key is never created through it.
    File.rm!(Path.join(node_dir, "identity.key"))
    target = Path.join(dir, "exfiltrated.key")
    File.ln_s!(target, Path.join(node_dir, "identity.key"))

    assert {:error, {:identity_file, {:symlink, _}}} =
             Keyring.start_link(name: SecretsLink, data_dir: node_dir)

    refute File.exists?(target)
  end

  describe "root key files (KeyFile.save_secret/4, load_secret/2)" do
    setup do
      {:ok, root} = Keyring.Native.keypair_generate()
      %{root: root, id: Keyring.Native.keypair_public_key(root), dir: TmpDir.new()}
    end

    test "a sealed root key is its own 0600 file in a 0700 directory", ctx do
      path = KeyFile.root_key_path(ctx.dir, ctx.id)
      assert :ok = KeyFile.save_secret(path, ctx.root, "pass")
      assert mode(path) == 0o600
      assert mode(Path.dirname(path)) == 0o700
      assert {:ok, kp} = KeyFile.load_secret(path, "pass")
      assert Keyring.Native.keypair_public_key(kp) == ctx.id
      assert {:error, :bad_passphrase} = KeyFile.load_secret(path, "wrong")
      assert {:error, :passphrase_required} = KeyFile.load_secret(path, nil)
      refute File.read!(path) =~ :binary.part(ctx.id, 0, 8)
    end

    test "a root key is never overwritten unless asked, and an unsealed one is logged", ctx do
      path = KeyFile.root_key_path(ctx.dir, ctx.id)

      log = capture_log(fn -> assert :ok = KeyFile.save_secret(path, ctx.root, nil) end)
      assert log =~ "in the clear: only its file mode"
      assert {:error, {:exists, ^path}} = KeyFile.save_secret(path, ctx.root, "pass")
      assert {:ok, _} = KeyFile.load_secret(path, nil)
      assert :ok = KeyFile.save_secret(path, ctx.root, "pass", replace: true)
      assert {:ok, _} = KeyFile.load_secret(path, "pass")
      assert Path.wildcard(Path.join(Path.dirname(path), ".*")) == []
    end
  end
end
