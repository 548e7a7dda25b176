defmodule Keyring.IdentityTest do
  use ExUnit.Case, async: true

  alias Keyring.Identity
  alias Keyring.Identity.NodeId
  alias Keyring.Test.TmpDir

  doctest Keyring.Identity
  doctest Keyring.Identity.NodeId

  defp start(name, opts) do
    start_supervised!({Keyring, Keyword.merge([name: name], opts)})
    name
  end

  test "the key pair is created on first start, persisted with mode 0600 and reloaded" do
    dir = TmpDir.new()
    start(IdA, data_dir: dir)
    id = Identity.node_id(instance: IdA)
    assert {:ok, _} = NodeId.parse(id)
    assert NodeId.parse!(id) == Identity.public_key(instance: IdA)

    %File.Stat{mode: mode} = File.stat!(Path.join(dir, "identity.key"))
    assert Bitwise.band(mode, 0o777) == 0o600

    stop_supervised!(IdA)
    start(IdA, data_dir: dir)
    assert Identity.node_id(instance: IdA) == id
  end

  test "a sealed key opens only with its passphrase" do
    dir = TmpDir.new()
    start(IdB, data_dir: dir, passphrase: "correct horse")
    id = Identity.node_id(instance: IdB)
    stop_supervised!(IdB)

    # "KRKEY", version 1, kind 1 (sealed): params, salt, nonce, ciphertext + tag
    assert <<"KRKEY", 1, 1, _::binary>> = sealed = File.read!(Path.join(dir, "identity.key"))
    assert byte_size(sealed) == 7 + 12 + 16 + 24 + 32 + 16

    assert {:error, :bad_passphrase} =
             Keyring.start_link(name: IdB, data_dir: dir, passphrase: "wrong")

    assert {:error, :passphrase_required} = Keyring.start_link(name: IdB, data_dir: dir)
    start(IdB, data_dir: dir, passphrase: "correct horse")
    assert Identity.node_id(instance: IdB) == id
  end

  test "a damaged key file is a clear error, not a crash" do
    dir = TmpDir.new()
    File.write!(Path.join(dir, "identity.key"), "garbage")

    ExUnit.CaptureLog.capture_log(fn ->
      assert {:error, {:malformed_key_file, _why}} = Keyring.start_link(name: IdC, data_dir: dir)
    end)
  end

  test "sign and strict verify, small and large messages" do
    start(IdD, data_dir: TmpDir.new())
    pk = Identity.public_key(instance: IdD)

    for message <- ["", "hello", :binary.copy("x", 1_000_000)] do
      sig = Identity.sign(message, instance: IdD)
      assert byte_size(sig) == 64
      assert Identity.verify(pk, message, sig)
      refute Identity.verify(pk, message <> "!", sig)
      <<first, rest::binary>> = sig
      refute Identity.verify(pk, message, <<Bitwise.bxor(first, 1), rest::binary>>)
    end
  end

  test "verification rejects a small-order key with a trivially forged signature" do
    # The identity point as public key, identity R and S = 0: accepted by lax
    # Ed25519 verification for every message.
    weak = <<1, 0::248>>
    forged = <<1, 0::248, 0::256>>
    refute Identity.verify(weak, "anything", forged)
  end

  test "bad argument types raise ArgumentError" do
    start(IdE, data_dir: TmpDir.new())
    assert_raise ArgumentError, fn -> Identity.sign(:not_binary, instance: IdE) end
    assert_raise ArgumentError, fn -> Identity.verify(<<1, 2>>, "m", <<0::512>>) end
    assert_raise ArgumentError, fn -> Identity.verify(<<0::256>>, "m", <<0::256>>) end
    assert_raise ArgumentError, fn -> Identity.node_id(instance: NoSuchKeyring) end
    assert_raise ArgumentError, fn -> NodeId.parse!("short") end
    assert {:error, :invalid_node_id} = NodeId.parse(String.duplicate("1", 52))
    assert {:error, :invalid_node_id} = NodeId.parse(String.duplicate("A", 52))
  end
end
