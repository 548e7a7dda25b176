defmodule Keyring.PubSubTest do
  use ExUnit.Case, async: true

  alias Keyring.PubSub

  doctest Keyring.PubSub
  doctest Keyring.CRDT

  setup do
    name = :"PubSubTest#{System.unique_integer([:positive])}"
    dir = Keyring.Test.TmpDir.new("kr-pubsub")
    start_supervised!({Keyring, name: name, data_dir: dir})
    {:ok, instance: name}
  end

  test "broadcast reaches every subscriber of the topic and only them", %{instance: k} do
    parent = self()

    spawn_link(fn ->
      :ok = PubSub.subscribe("t", instance: k)
      send(parent, :subscribed)
      receive do: (msg -> send(parent, {:other_got, msg}))
    end)

    assert_receive :subscribed
    :ok = PubSub.subscribe("t", instance: k)
    :ok = PubSub.subscribe("unrelated", instance: k)
    :ok = PubSub.broadcast("t", :hello, instance: k)
    assert_receive :hello
    assert_receive {:other_got, :hello}
    refute_received :hello
  end

  test "unsubscribe stops delivery; subscribers are listed", %{instance: k} do
    :ok = PubSub.subscribe("t2", instance: k)
    assert self() in PubSub.subscribers("t2", instance: k)
    :ok = PubSub.unsubscribe("t2", instance: k)
    :ok = PubSub.unsubscribe("t2", instance: k)
    :ok = PubSub.local_broadcast("t2", :nope, instance: k)
    refute_receive :nope, 50
  end

  test "topology and presence events are published on the documented topics", %{instance: k} do
    :ok = Keyring.Coordinator.subscribe(instance: k)
    {:ok, ring} = Keyring.Ring.create("events", instance: k)
    {mesh_addr, _join} = Keyring.Ring.addresses(instance: k)

    # Presence carries the mesh address and the keyrings served (the two
    # planes meet there).
    assert_receive {:keyring_presence, :update,
                    %Keyring.Coordinator.Presence{mesh_addr: ^mesh_addr, keyrings: [^ring]}}

    assert PubSub.presence_topic() == "keyring:presence"
    assert PubSub.topology_topic() == "keyring:topology"
  end

  test "an unknown instance raises ArgumentError" do
    assert_raise ArgumentError, ~r/no Keyring instance/, fn ->
      PubSub.subscribe("t", instance: Nope)
    end

    assert_raise ArgumentError, fn -> PubSub.subscribe("t", bogus: 1) end
  end
end
