defmodule Keyring.RPCTest do
  use ExUnit.Case, async: false
  import Keyring.Test.{Eventually, Instances}

  alias Keyring.Ring

  setup do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring = ring_with(a, [b], roles: ["web"])
    %{a: a, b: b, ring: ring}
  end

  test "members call each other; the handler sees the caller's key and roles", ctx do
    :ok =
      Keyring.expose(:whoami, fn arg, caller -> {arg, caller.key, caller.roles} end,
        instance: ctx.a
      )

    b_key = key(ctx.b)

    assert {:ok, {[1, 2.5, "x", :ok, %{k: nil}], ^b_key, ["web"]}} =
             Keyring.call(id(ctx.a), :whoami, [1, 2.5, "x", :ok, %{k: nil}], instance: ctx.b)

    # And the other way over the same mesh.
    :ok = Keyring.expose("echo", & &1, instance: ctx.b)
    assert {:ok, "hi"} = Keyring.call(id(ctx.b), "echo", "hi", instance: ctx.a)
  end

  test "large arguments and replies arrive whole, in calls and casts", ctx do
    big = :crypto.strong_rand_bytes(3 * 1024 * 1024 + 11)
    nested = %{blob: big, list: [big, "small"]}

    :ok =
      Keyring.expose(:digest, fn arg -> {:erlang.md5(:erlang.term_to_binary(arg)), arg} end,
        instance: ctx.a
      )

    want = :erlang.md5(:erlang.term_to_binary(nested))
    assert {:ok, {^want, ^nested}} = Keyring.call(id(ctx.a), :digest, nested, instance: ctx.b)

    parent = self()
    :ok = Keyring.expose(:sink, fn arg -> send(parent, {:sunk, arg}) end, instance: ctx.a)
    assert :ok = Keyring.cast(id(ctx.a), :sink, {:big, big}, instance: ctx.b)
    assert_receive {:sunk, {:big, ^big}}, 5_000
  end

  # Binaries of 64 KiB or more are lent to the mesh, not copied: what arrives
  # must be the bytes as they were at the call, whatever the caller does next.
  test "lent binaries arrive as they were sent: sub-binaries, and binaries appended to later",
       ctx do
    parent = self()
    :ok = Keyring.expose(:sink, fn arg -> send(parent, {:sunk, arg}) end, instance: ctx.a)

    # Built by appending, so the emulator may grow it in place.
    grown = Enum.reduce(1..40, <<>>, fn i, acc -> acc <> :binary.copy(<<i>>, 4096) end)
    sent = :binary.copy(grown)
    assert :ok = Keyring.cast(id(ctx.a), :sink, grown, instance: ctx.b)
    grown = Enum.reduce(41..200, grown, fn i, acc -> acc <> :binary.copy(<<i>>, 4096) end)
    assert_receive {:sunk, ^sent}, 5_000
    assert byte_size(grown) == 200 * 4096

    big = :crypto.strong_rand_bytes(1_000_000)
    part = binary_part(big, 12_345, 300_000)
    assert :ok = Keyring.cast(id(ctx.a), :sink, [part, 1, part], instance: ctx.b)
    assert_receive {:sunk, [^part, 1, ^part]}, 5_000
  end

  test "large binaries are lent, so sending them needs no dirty scheduler" do
    big = :binary.copy("x", 1_000_000)
    assert Keyring.Mesh.TermCodec.dirty?(big)
    refute Keyring.Mesh.TermCodec.dirty?({big, [big]}, 64 * 1024)
    assert Keyring.Mesh.TermCodec.dirty?(List.duplicate(:binary.copy("y", 60_000), 10), 64 * 1024)
  end

  test "an unexposed handle is not found; an unauthorised caller is forbidden", ctx do
    assert {:error, :not_found} = Keyring.call(id(ctx.a), :nothing_here, 1, instance: ctx.b)

    :ok =
      Keyring.expose(:admin_only, fn _ -> :secret end,
        instance: ctx.a,
        authorize: fn caller -> caller.admin end
      )

    assert {:error, :forbidden} = Keyring.call(id(ctx.a), :admin_only, 1, instance: ctx.b)
    :ok = Keyring.expose(:admin_only, fn _ -> :secret end, instance: ctx.b, authorize: & &1.admin)
    assert {:ok, :secret} = Keyring.call(id(ctx.b), :admin_only, 1, instance: ctx.a)
    :ok = Keyring.RPC.unexpose(:admin_only, instance: ctx.b)
    assert {:error, :not_found} = Keyring.call(id(ctx.b), :admin_only, 1, instance: ctx.a)
  end

  test "a raising handler or authorize function gives an error, not a crash", ctx do
    :ok = Keyring.expose(:boom, fn _ -> raise "kaput" end, instance: ctx.a, expose_errors: true)
    assert {:error, {:handler_error, detail}} = Keyring.call(id(ctx.a), :boom, 1, instance: ctx.b)
    assert detail =~ "kaput"
    :ok = Keyring.expose(:guarded, & &1, instance: ctx.a, authorize: fn _ -> raise "no" end)
    assert {:error, :forbidden} = Keyring.call(id(ctx.a), :guarded, 1, instance: ctx.b)
    :ok = Keyring.expose(:pid, fn _ -> self() end, instance: ctx.a)
    assert {:error, {:handler_error, _}} = Keyring.call(id(ctx.a), :pid, 1, instance: ctx.b)
  end

  test "a handler that runs past its timeout is killed and the caller told", ctx do
    :ok =
      Keyring.expose(:slow, fn _ -> Process.sleep(:infinity) end, instance: ctx.a, timeout: 200)

    assert {:error, :unavailable} = Keyring.call(id(ctx.a), :slow, 1, instance: ctx.b)
  end

  test "peer and membership events are published on keyring:mesh", ctx do
    :ok = Keyring.Mesh.subscribe(instance: ctx.a)
    newcomer = :crypto.strong_rand_bytes(32)
    {:ok, _} = Ring.add_member(ctx.ring, newcomer, instance: ctx.a)
    assert_receive {:keyring_mesh, :membership, %{id: ring, members: members}}, 5_000
    assert ring == ctx.ring
    assert Enum.any?(members, &(&1.key == newcomer))
    {:ok, _} = Ring.remove_member(ctx.ring, key(ctx.b), instance: ctx.a)
    b_key = key(ctx.b)
    assert_receive {:keyring_mesh, :peer_down, %{peer: ^b_key}}, 5_000
  end

  test "arguments the codec does not carry raise ArgumentError at the caller", ctx do
    assert_raise ArgumentError, fn -> Keyring.call(id(ctx.a), :x, self(), instance: ctx.b) end

    assert_raise ArgumentError, fn ->
      Keyring.call(id(ctx.a), :x, fn -> 1 end, instance: ctx.b)
    end

    assert_raise ArgumentError, fn ->
      Keyring.call(id(ctx.a), :x, Bitwise.bsl(1, 70), instance: ctx.b)
    end
  end

  test "casts run the handler without a reply", ctx do
    test = self()
    :ok = Keyring.expose(:notify, fn msg -> send(test, {:got, msg}) end, instance: ctx.a)
    assert :ok = Keyring.cast(id(ctx.a), :notify, {:hello, 1}, instance: ctx.b)
    assert_receive {:got, {:hello, 1}}, 5_000
  end

  test "calling a node that shares no keyring is refused locally", ctx do
    c = start_instance(:c)
    assert {:error, :not_member} = Keyring.call(id(c), :x, 1, instance: ctx.a)
    # ... and so is a call from a node that belongs to no keyring at all.
    assert {:error, :not_member} = Keyring.call(id(ctx.a), :x, 1, instance: c)
    assert Keyring.Ring.list(instance: c) == []
  end

  test "a non-member is rejected in the handshake", ctx do
    # C holds a valid copy of the log but is not in it.
    c = start_instance(:c)
    {:ok, log} = Ring.log(ctx.ring, instance: ctx.a)
    {:ok, _} = Ring.import_log(log, instance: c)
    {addr, _} = Ring.addresses(instance: ctx.a)
    :ok = Keyring.expose(:echo, & &1, instance: ctx.a)

    assert {:error, {:handshake_rejected, _}} =
             Keyring.call(id(ctx.a), :echo, 1, instance: c, address: addr)

    assert connected(ctx.a, ctx.ring) |> Enum.all?(&(&1 != key(c)))
    # The other direction: A refuses to dial C (not in A's snapshot).
    {c_addr, _} = Ring.addresses(instance: c)

    assert {:error, :not_member} =
             Keyring.call(id(c), :echo, 1, instance: ctx.a, keyring: ctx.ring, address: c_addr)
  end

  test "a peer claiming another member's key is rejected", ctx do
    c = start_instance(:c)
    {:ok, invite} = Ring.invite(ctx.ring, instance: ctx.a)
    {:ok, _} = Keyring.join(invite, instance: c)
    :ok = Keyring.expose(:echo, & &1, instance: ctx.b)
    # Drop the connection C opened when it joined, so A must dial.
    assert eventually(fn -> key(c) in connected(ctx.a, ctx.ring) end)
    Keyring.Native.mesh_disconnect(mesh(ctx.a), ctx.ring, key(c))
    # Dial B's address but expect C's key: B cannot prove it holds C's key.
    {b_addr, _} = Ring.addresses(instance: ctx.b)

    assert {:error, {:handshake_rejected, _}} =
             Keyring.call(id(c), :echo, 1, instance: ctx.a, address: b_addr)
  end

  test "a revoked member is disconnected at once and refused afterwards", ctx do
    :ok = Keyring.expose(:echo, & &1, instance: ctx.a)
    assert {:ok, 1} = Keyring.call(id(ctx.a), :echo, 1, instance: ctx.b)
    assert key(ctx.b) in connected(ctx.a, ctx.ring)
    {:ok, _} = Ring.remove_member(ctx.ring, key(ctx.b), instance: ctx.a)
    assert key(ctx.b) not in connected(ctx.a, ctx.ring)
    assert eventually(fn -> connected(ctx.b, ctx.ring) == [] end)

    assert {:error, {:handshake_rejected, _}} = Keyring.call(id(ctx.a), :echo, 2, instance: ctx.b)
  end

  test "an expired member is disconnected and refused", ctx do
    c = start_instance(:c)
    {:ok, _} = Ring.add_member(ctx.ring, key(c), instance: ctx.a, ttl: 3_000)
    {:ok, log} = Ring.log(ctx.ring, instance: ctx.a)
    {:ok, _} = Ring.import_log(log, instance: c)
    {addr, _} = Ring.addresses(instance: ctx.a)
    :ok = Keyring.expose(:echo, & &1, instance: ctx.a)
    assert {:ok, 1} = Keyring.call(id(ctx.a), :echo, 1, instance: c, address: addr)
    assert eventually(fn -> key(c) not in connected(ctx.a, ctx.ring) end)
    Process.sleep(100)

    assert {:error, {:handshake_rejected, _}} =
             Keyring.call(id(ctx.a), :echo, 2, instance: c, address: addr, keyring: ctx.ring)
  end

  test "membership changes reach connected members", ctx do
    :ok = Keyring.expose(:echo, & &1, instance: ctx.a)
    assert {:ok, 1} = Keyring.call(id(ctx.a), :echo, 1, instance: ctx.b)
    newcomer = :crypto.strong_rand_bytes(32)
    {:ok, _} = Ring.add_member(ctx.ring, newcomer, instance: ctx.a, roles: ["db"])

    assert eventually(fn ->
             {:ok, info} = Ring.info(ctx.ring, instance: ctx.b)
             Enum.any?(info.members, &(&1.key == newcomer))
           end)
  end
end
