Code.require_file("mesh_helpers.exs", __DIR__)

defmodule Keyring.Mesh.LinksTest do
  # A restarted member is found again by the mesh itself, not by the next call.
  use ExUnit.Case, async: false

  import Keyring.MeshHelpers

  test "a member that restarts on its port is reconnected without a call" do
    a = start_instance(:a)
    name = :"kr_restarts_#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), "#{name}")
    File.rm_rf!(dir)
    port = Keyring.Test.Ports.free_udp()

    start_b = fn ->
      {:ok, pid} = Keyring.start_link(name: name, data_dir: dir, mesh: [port: port])
      Process.unlink(pid)
      pid
    end

    b = start_b.()
    ring = ring_with(a, [name])
    b_key = key(name)
    :ok = Keyring.PubSub.subscribe(Keyring.Mesh.topic(), keyring: a)
    assert eventually(fn -> b_key in connected(a, ring) end)

    # B stops: its mesh says goodbye, so A knows at once (not after its idle
    # timeout), and the port is free for the restart.
    Supervisor.stop(b, :shutdown, 10_000)
    assert_receive {:keyring_mesh, :peer_down, %{peer: ^b_key}}, 5_000
    b = start_b.()

    on_exit(fn ->
      try do
        Supervisor.stop(b, :shutdown, 10_000)
      catch
        :exit, _ -> :ok
      end

      File.rm_rf!(dir)
    end)

    # Nobody calls B: A redials it in the background.
    assert_receive {:keyring_mesh, :peer_up, %{peer: ^b_key}}, 15_000
    assert b_key in connected(a, ring)
  end

  test "a member that restarts on another port dials its keyrings again" do
    a = start_instance(:a)
    name = :"kr_moves_#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), "#{name}")
    File.rm_rf!(dir)

    start_b = fn ->
      # Port 0: a new port on every start.
      {:ok, pid} = Keyring.start_link(name: name, data_dir: dir)
      Process.unlink(pid)
      pid
    end

    b = start_b.()
    ring = ring_with(a, [name])
    b_key = key(name)
    :ok = Keyring.PubSub.subscribe(Keyring.Mesh.topic(), keyring: a)
    assert eventually(fn -> b_key in connected(a, ring) end)
    {old_address, _} = Keyring.Ring.addresses(keyring: name)

    Supervisor.stop(b, :shutdown, 10_000)
    assert_receive {:keyring_mesh, :peer_down, %{peer: ^b_key}}, 5_000
    b = start_b.()

    on_exit(fn ->
      try do
        Supervisor.stop(b, :shutdown, 10_000)
      catch
        :exit, _ -> :ok
      end

      File.rm_rf!(dir)
    end)

    {new_address, _} = Keyring.Ring.addresses(keyring: name)
    refute new_address == old_address
    # A cannot know the new port; B remembered where A was and dials it.
    assert_receive {:keyring_mesh, :peer_up, %{peer: ^b_key, address: ^new_address}}, 15_000
    assert b_key in connected(a, ring)
  end
end
