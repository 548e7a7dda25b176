defmodule Keyring.Cluster.MeshReconnectTest do
  # Two real VMs, not connected by Erlang distribution. One dies without a
  # goodbye and comes back on its port: the survivor notices by its idle
  # timeout and dials it again by itself.
  use ExUnit.Case, async: false
  @moduletag :cluster

  alias Keyring.Test.Peers

  defp free_udp_port do
    {:ok, socket} = :gen_udp.open(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :gen_udp.close(socket)
    port
  end

  defp eventually(fun, tries \\ 200) do
    cond do
      fun.() -> true
      tries == 0 -> false
      true -> Process.sleep(100) && eventually(fun, tries - 1)
    end
  end

  test "a member VM killed without a goodbye is dialled again when it returns" do
    u = "#{System.os_time(:nanosecond)}_#{System.unique_integer([:positive])}"
    dirs = for n <- [:a, :b], do: Path.join(System.tmp_dir!(), "keyring-redial-#{n}-#{u}")
    # Short liveness settings so the loss shows within seconds.
    mesh = fn port -> [mesh: [port: port, keep_alive_ms: 300, idle_timeout_ms: 1_500]] end
    b_port = free_udp_port()
    a = Peers.start(:"redial_a_#{u}", dir: Enum.at(dirs, 0), keyring: mesh.(0))
    b = Peers.start(:"redial_b_#{u}", dir: Enum.at(dirs, 1), keyring: mesh.(b_port))

    on_exit(fn ->
      Peers.stop_all([a, b])
      Enum.each(dirs, &File.rm_rf/1)
    end)

    {:ok, ring} = Peers.call(a, Keyring.Ring, :create, ["ops"])
    {:ok, invite} = Peers.call(a, Keyring.Ring, :invite, [ring])
    assert {:ok, ^ring} = Peers.call(b, Keyring, :join, [invite])
    b_key = Peers.call(b, Keyring.Identity, :public_key, [])
    assert eventually(fn -> b_key in Peers.call(a, Keyring.Ring, :connected, [ring]) end)

    Peers.kill(b)
    assert eventually(fn -> b_key not in Peers.call(a, Keyring.Ring, :connected, [ring]) end)

    # Same data dir (identity, keyring) and port; nobody calls anybody.
    b = Peers.start(:"redial_b2_#{u}", dir: Enum.at(dirs, 1), keyring: mesh.(b_port))
    on_exit(:b_again, fn -> Peers.stop(b) end)
    assert eventually(fn -> b_key in Peers.call(a, Keyring.Ring, :connected, [ring]) end)
    a_key = Peers.call(a, Keyring.Identity, :public_key, [])
    assert a_key in Peers.call(b, Keyring.Ring, :connected, [ring])
  end
end
