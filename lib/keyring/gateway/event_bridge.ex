defmodule Keyring.Gateway.EventBridge do
  @moduledoc false
  # Subscribes to this instance's presence, topology and mesh topics on
  # Keyring.PubSub and publishes each message as a gateway event (SSE).

  use GenServer
  require Logger

  alias Keyring.{Identity, Instance, PubSub}
  alias Keyring.Gateway.{Events, JSON}
  alias Keyring.Native

  def start_link(opts),
    do:
      GenServer.start_link(__MODULE__, opts,
        name: Instance.child_name(opts[:instance], __MODULE__)
      )

  @impl GenServer
  def init(opts) do
    instance = opts[:instance]

    topics = [PubSub.presence_topic(), PubSub.topology_topic(), Keyring.Mesh.topic()]

    for topic <- topics ++ [Keyring.Sync.topic()],
        do: :ok = PubSub.subscribe(topic, instance: instance)

    %{handle: gw} = Instance.fetch!(instance, :gateway)

    {:ok,
     %{
       gateway: gw,
       self_id: Identity.node_id(instance: instance),
       self_key: Identity.public_key(instance: instance)
     }}
  end

  @impl GenServer
  def handle_info(message, state) do
    with {kind, subject, data} <- Events.from_message(message, state.self_id, state.self_key),
         {:ok, json} <- JSON.encode(data),
         {:ok, _id} <- Native.gateway_publish(state.gateway, kind, subject, json) do
      :ok
    else
      nil ->
        :ok

      {:error, reason} ->
        Logger.warning("[Keyring.Gateway] event not published: #{inspect(reason)}")
    end

    {:noreply, state}
  end
end
