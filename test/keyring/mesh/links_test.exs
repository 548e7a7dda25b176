defmodule Keyring.Mesh.LinksTest do
  # A restarted member is found again by the mesh itself, not by the next call.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}

  # A keyring of `a` and a restartable `b`, linked, with `a`'s mesh events
  # subscribed.
  defp linked_pair(b_opts) do
    a = start_instance(:a)
    {b, start_b} = restartable_instance(:b, b_opts)
    pid = start_b.()
    ring = ring_with(a, [b])
    :ok = Keyring.Mesh.subscribe(instance: a)
    assert eventually(fn -> key(b) in connected(a, ring) end)
    %{a: a, b: b, b_pid: pid, start_b: start_b, ring: ring, b_key: key(b)}
  end

  test "a member that restarts on its port is reconnected without a call" do
    %{b_key: b_key} = ctx = linked_pair(mesh: [port: Keyring.Test.Ports.free_udp()])

    # B stops: its mesh says goodbye, so A knows at once (not after its idle
    # timeout), and the port is free for the restart.
    stop(ctx.b_pid)
    assert_receive {:keyring_mesh, :peer_down, %{peer: ^b_key}}, 5_000
    ctx.start_b.()

    # Nobody calls B: A redials it in the background.
    assert_receive {:keyring_mesh, :peer_up, %{peer: ^b_key}}, 15_000
    # Both sides may dial at once; the link settles on one connection.
    eventually(fn -> b_key in connected(ctx.a, ctx.ring) end, 5_000, "the link to settle")
  end

  test "a member that restarts on another port dials its keyrings again" do
    # Port 0: a new port on every start.
    %{b_key: b_key} = ctx = linked_pair([])
    {old_address, _} = Keyring.Ring.addresses(instance: ctx.b)

    stop(ctx.b_pid)
    assert_receive {:keyring_mesh, :peer_down, %{peer: ^b_key}}, 5_000
    ctx.start_b.()
    {new_address, _} = Keyring.Ring.addresses(instance: ctx.b)
    refute new_address == old_address

    # A cannot know the new port; B remembered where A was and dials it.
    assert_receive {:keyring_mesh, :peer_up, %{peer: ^b_key, address: ^new_address}}, 15_000
    eventually(fn -> b_key in connected(ctx.a, ctx.ring) end, 5_000, "the link to settle")
  end
end
