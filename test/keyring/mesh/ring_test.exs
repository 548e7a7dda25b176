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

  test "forged log entries are refused with the rule they break" do
    [a, b, c] = [start_instance(:a), start_instance(:b), start_instance(:c)]
    ring = ring_with(a, [b])
    {:ok, [genesis, join]} = Ring.log(ring, instance: a)
    # Flip one byte of the signature: strict verification refuses it.
    <<head::binary-size(byte_size(join) - 1), last>> = join
    forged = head <> <<Bitwise.bxor(last, 1)>>
    assert {:error, {:bad_signature, 1}} = Ring.import_log([genesis, forged], instance: c)
    assert {:error, :no_genesis} = Ring.import_log([join], instance: c)
    assert {:error, {:malformed, "entry", _}} = Ring.import_log([genesis, "garbage"], instance: c)
    assert Ring.list(instance: c) == []
    # The genuine log imports.
    assert {:ok, %{length: 2}} = Ring.import_log([genesis, join], instance: c)
  end

  test "a fork between two admins resolves the same way on every member, and is reported" do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring = ring_with(a, [b])
    {:ok, _} = Ring.add_admin(ring, key(b), instance: a)
    eventually(fn -> match?({:ok, %{length: 3}}, Ring.info(ring, instance: b)) end)
    :ok = Keyring.Mesh.subscribe(instance: a)

    # Cut the link (closed on purpose: nobody redials), then both admins
    # change the keyring at the same position.
    Keyring.Native.mesh_disconnect(mesh(a), ring, key(b))
    Keyring.Native.mesh_disconnect(mesh(b), ring, key(a))
    eventually(fn -> connected(a, ring) == [] and connected(b, ring) == [] end)
    {:ok, _} = Ring.add_member(ring, :crypto.strong_rand_bytes(32), instance: a, roles: ["a"])
    {:ok, _} = Ring.add_member(ring, :crypto.strong_rand_bytes(32), instance: b, roles: ["b"])

    # They meet again: each pushes its log, both see the fork.
    {b_addr, _} = Ring.addresses(instance: b)
    :ok = Keyring.RPC.connect(id(b), b_addr, instance: a, keyring: ring)
    assert_receive {:keyring_mesh, :fork, %{keyring: ^ring}}, 10_000

    # Both end with the same membership, and neither change is lost: the
    # author of the losing branch signs its operation again on the winner.
    eventually(fn ->
      {:ok, ia} = Ring.info(ring, instance: a)
      {:ok, ib} = Ring.info(ring, instance: b)
      roles = ia.members |> Enum.flat_map(& &1.roles)
      ia == ib and "a" in roles and "b" in roles
    end)
  end

  test "the root role rotates to a new key kept in the same sealed file" do
    dir = Path.join(System.tmp_dir!(), "kr_rotate_#{System.unique_integer([:positive])}")
    a = start_instance(:a, data_dir: dir, passphrase: "pw")
    {:ok, ring} = Ring.create("ops", instance: a)
    path = Keyring.Identity.KeyFile.root_key_path(dir, ring)
    old = File.read!(path)
    assert {:ok, %{id: ^ring, root: new_root}} = Ring.rotate_root(ring, instance: a)
    refute new_root == ring
    {:ok, kp} = Native.keypair_open(File.read!(path), "pw")
    assert Native.keypair_public_key(kp) == new_root
    refute File.read!(path) == old
    # The old root key is no admin any more and can be revoked.
    {:ok, info} = Ring.remove_member(ring, ring, instance: a)
    assert ring in info.revoked
    # A member without the root key cannot rotate.
    b = start_instance(:b)
    {:ok, invite} = Ring.invite(ring, instance: a)
    {:ok, ^ring} = Keyring.join(invite, instance: b)
    assert {:error, :not_the_root} = Ring.rotate_root(ring, instance: b)
  end

  test "invites: capped uses, revocation, binding, and never a renewal" do
    [a, b, c, d] = for t <- [:a, :b, :c, :d], do: start_instance(t)
    {:ok, ring} = Ring.create("ops", instance: a)
    {:ok, twice} = Ring.invite(ring, instance: a, max_uses: 2, roles: ["web"])
    assert {:ok, ^ring} = Keyring.join(twice, instance: b)
    assert {:ok, ^ring} = Keyring.join(twice, instance: c)
    assert {:error, {:refused, :bad_invite}} = Keyring.join(twice, instance: d)

    {:ok, revoked} = Ring.invite(ring, instance: a, max_uses: 0)
    {:ok, _} = Ring.revoke_invite(ring, revoked, instance: a)
    assert {:error, {:refused, :bad_invite}} = Keyring.join(revoked, instance: d)

    {:ok, bound} = Ring.invite(ring, instance: a, bind: id(d))
    assert {:error, {:refused, :bad_invite}} = Keyring.join(bound, instance: start_instance(:e))
    assert {:ok, ^ring} = Keyring.join(bound, instance: d)

    # A member cannot renew or change itself with an invite.
    {:ok, open} = Ring.invite(ring, instance: a, max_uses: 0, roles: ["ops"])
    assert {:error, {:refused, :bad_invite}} = Keyring.join(open, instance: b)
    {:ok, info} = Ring.info(ring, instance: a)
    assert Enum.find(info.members, &(&1.key == key(b))).roles == ["web"]
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

    {:ok, refs} = Keyring.Store.list_refs("", instance: a)
    refute Enum.any?(refs, fn {_name, value} -> String.contains?(value, sealed) end)
    assert [%{id: ^ring, root: true}] = Keyring.Mesh.Persistence.load_all(a)
  end

  test "bad arguments raise ArgumentError" do
    a = start_instance(:a)
    assert_raise ArgumentError, fn -> Ring.create("", instance: a) end
    assert_raise ArgumentError, fn -> Ring.info(:nope, instance: a) end
    assert_raise ArgumentError, fn -> Ring.add_member("short", "x", instance: a) end
  end
end
