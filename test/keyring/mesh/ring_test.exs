defmodule Keyring.RingTest do
  use ExUnit.Case, async: false
  import Keyring.Test.{Eventually, Instances}

  alias Keyring.{Native, Ring}

  test "creating a keyring makes this node its first admin" do
    a = start_instance(:a)
    {:ok, ring} = Ring.create("ops", instance: a)
    {:ok, info} = Ring.info(ring, instance: a)
    assert info.name == "ops"
    assert info.length == 1
    assert [%{key: k, admin: true, roles: ["admin"]} | _] = Enum.filter(info.members, & &1.admin)
    assert key(a) in Enum.map(info.members, & &1.key)
    assert k in [key(a), ring]
    assert Ring.list(instance: a) == [ring]
    assert Ring.encode_id(ring) |> Ring.id!() == ring
  end

  test "a node joins with an invite and both replay the same log" do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring = ring_with(a, [b], roles: ["web"])
    {:ok, log_a} = Ring.log(ring, instance: a)
    {:ok, log_b} = Ring.log(ring, instance: b)
    assert log_a == log_b
    {:ok, info} = Ring.info(ring, instance: b)
    assert %{roles: ["web"], admin: false} = Enum.find(info.members, &(&1.key == key(b)))
  end

  test "a one-time invite cannot be used twice" do
    [a, b, c] = [start_instance(:a), start_instance(:b), start_instance(:c)]
    {:ok, ring} = Ring.create("ops", instance: a)
    {:ok, invite} = Ring.invite(ring, instance: a)
    assert {:ok, ^ring} = Keyring.join(invite, instance: b)
    assert {:error, {:refused, :bad_invite}} = Keyring.join(invite, instance: c)
  end

  test "an expired invite is refused before anything is sent" do
    [a, b] = [start_instance(:a), start_instance(:b)]
    {:ok, ring} = Ring.create("ops", instance: a)
    {:ok, invite} = Ring.invite(ring, instance: a, ttl: 1)
    Process.sleep(5)
    assert {:error, :invite_expired} = Keyring.join(invite, instance: b)
    assert {:error, :invalid_invite} = Keyring.join("nonsense", instance: b)
  end

  test "a member that is not an admin cannot change the log" do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring = ring_with(a, [b])

    assert {:error, {:not_an_admin, 2}} =
             Ring.add_member(ring, :crypto.strong_rand_bytes(32), instance: b)

    assert {:error, :not_an_admin} = Ring.invite(ring, instance: b)
  end

  test "forged log entries are rejected with the rule they break" do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring = ring_with(a, [b])
    {:ok, log} = Ring.log(ring, instance: a)
    [genesis, add_b] = log
    # Flip one byte of the signature: strict verification refuses it.
    <<head::binary-size(byte_size(add_b) - 1), last>> = add_b
    forged = head <> <<Bitwise.bxor(last, 1)>>
    assert {:error, {:bad_signature, 1}} = Ring.import_log([genesis, forged], instance: b)
    # Change the member key inside the signed body.
    <<prefix::binary-size(124), _::binary-size(32), rest::binary>> = add_b
    tampered = prefix <> :crypto.strong_rand_bytes(32) <> rest
    assert {:error, {:bad_signature, 1}} = Ring.import_log([genesis, tampered], instance: b)
    assert {:error, :no_genesis} = Ring.import_log([add_b], instance: b)
    assert {:error, {:malformed, "entry", _}} = Ring.import_log([genesis, "garbage"], instance: b)
  end

  test "a forked log is rejected" do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring = ring_with(a, [b])
    {:ok, [genesis | _]} = Ring.log(ring, instance: a)
    # A different, validly signed entry at position 1 (A is an admin).
    keypair = Keyring.Instance.fetch!(a, :keypair)
    op = {:add_member, :crypto.strong_rand_bytes(32), 0, []}
    {:ok, other} = Native.ring_append([genesis], keypair, op, System.os_time(:millisecond))
    assert {:error, {:fork, 1}} = Ring.import_log([genesis, other], instance: b)
  end

  test "keyrings survive a restart of the instance" do
    {a, start} = restartable_instance(:a)
    pid = start.()
    {:ok, ring} = Ring.create("ops", instance: a)
    {:ok, _} = Ring.add_member(ring, :crypto.strong_rand_bytes(32), instance: a, roles: ["db"])
    {:ok, before} = Ring.info(ring, instance: a)
    stop(pid)
    start.()
    assert {:ok, ^before} = Ring.info(ring, instance: a)
    assert Ring.list(instance: a) == [ring]
  end

  test "the root key is kept sealed in its own 0600 file, never in the store" do
    dir = Path.join(System.tmp_dir!(), "kr_root_#{System.unique_integer([:positive])}")
    a = start_instance(:a, passphrase: "correct horse", data_dir: dir)
    {:ok, ring} = Ring.create("ops", instance: a)
    path = Keyring.Identity.KeyFile.root_key_path(dir, ring)
    assert %{mode: mode} = File.stat!(path)
    assert Bitwise.band(mode, 0o777) == 0o600
    {:ok, sealed} = File.read(path)
    assert {:error, :passphrase_required} = Native.keypair_open(sealed, nil)
    assert {:ok, root} = Native.keypair_open(sealed, "correct horse")
    assert Native.keypair_public_key(root) == ring

    {:ok, refs} = Keyring.Store.list_refs("", keyring: a)
    refute Enum.any?(refs, fn {_name, value} -> String.contains?(value, sealed) end)
    assert [%{id: ^ring, root: true}] = Keyring.Mesh.Persistence.load_all(a, dir)
  end

  test "bad arguments raise ArgumentError" do
    a = start_instance(:a)
    assert_raise ArgumentError, fn -> Ring.create("", instance: a) end
    assert_raise ArgumentError, fn -> Ring.info(:nope, instance: a) end
    assert_raise ArgumentError, fn -> Ring.add_member("short", "x", instance: a) end
  end
end
