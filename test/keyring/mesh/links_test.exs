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
end
