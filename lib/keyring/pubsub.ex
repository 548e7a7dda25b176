defmodule Keyring.PubSub do
  @moduledoc """
  Cluster-wide publish/subscribe on OTP's `:pg`, in the spirit of
  Phoenix.PubSub's PG2 adapter (which cannot be used here: no hex).

  Every Keyring instance runs one `:pg` scope named `<instance>.PubSub`. A
  subscriber joins the group `topic` in that scope; `broadcast/3` sends to every
  subscriber on every connected node, `local_broadcast/3` only to this node's.

  ## Topics and messages

  Keyring itself publishes (locally, each node from its own point of view):

  | topic | message |
  |---|---|
  | `"keyring:presence"` | `{:keyring_presence, :join \\| :update \\| :down \\| :leave, %Keyring.Coordinator.Presence{}}` |
  | `"keyring:topology"` | `{:keyring_topology, :nodeup \\| :nodedown, node()}` |
  | `"keyring:feed"` | `{:keyring_feed, :entry \\| :fork \\| :ref, _}` (see `Keyring.Feed`) |

  - `:join`: a node (or a new incarnation of it) appeared;
  - `:update`: its capabilities, health or address changed;
  - `:down`: it disconnected or missed heartbeats; reads skip it from now on;
    it comes back with `:join` if it returns with the same incarnation;
  - `:leave`: it was removed (permanently down, replaced by a new incarnation,
    or left gracefully).

  Forward them to Phoenix.PubSub or `:telemetry` in a host app:

      iex> dir = Path.join(System.tmp_dir!(), "keyring-pubsub-doc-#{System.unique_integer([:positive])}")
      iex> {:ok, _} = Keyring.start_link(name: PubSubDoc, data_dir: dir)
      iex> :ok = Keyring.PubSub.subscribe("keyring:presence", instance: PubSubDoc)
      iex> Keyring.PubSub.local_broadcast("keyring:presence", {:keyring_presence, :join, :example}, instance: PubSubDoc)
      :ok
      iex> receive do {:keyring_presence, kind, _entry} -> kind end
      :join

  Subscriptions end when the subscriber exits (`:pg` monitors members).
  """

  alias Keyring.Instance

  @presence "keyring:presence"
  @topology "keyring:topology"

  @doc "The presence topic, `#{inspect(@presence)}`."
  @spec presence_topic() :: String.t()
  def presence_topic, do: @presence

  @doc "The topology topic, `#{inspect(@topology)}`."
  @spec topology_topic() :: String.t()
  def topology_topic, do: @topology

  @doc false
  def child_spec(opts) do
    scope = scope(Keyword.fetch!(opts, :instance))
    %{id: __MODULE__, start: {:pg, :start_link, [scope]}}
  end

  @doc "The `:pg` scope of an instance (`<instance>.PubSub`)."
  @spec scope(Keyring.instance()) :: atom()
  def scope(instance), do: Instance.child_name(instance, __MODULE__)

  @doc """
  Subscribes the calling process to `topic` (any term; Keyring's own topics
  are strings). Subscribing twice delivers every message twice.

  Options: `:instance` (default `Keyring`).
  """
  @spec subscribe(term(), keyword()) :: :ok
  def subscribe(topic, opts \\ []) do
    :pg.join(scope!(opts), topic, self())
  end

  @doc "Removes the calling process' subscriptions to `topic`."
  @spec unsubscribe(term(), keyword()) :: :ok
  def unsubscribe(topic, opts \\ []) do
    case :pg.leave(scope!(opts), topic, self()) do
      :ok -> :ok
      :not_joined -> :ok
    end
  end

  @doc "Sends `message` to every subscriber of `topic` on every connected node."
  @spec broadcast(term(), term(), keyword()) :: :ok
  def broadcast(topic, message, opts \\ []) do
    scope!(opts) |> :pg.get_members(topic) |> Enum.each(&send(&1, message))
  end

  @doc "Sends `message` to the subscribers of `topic` on this node only."
  @spec local_broadcast(term(), term(), keyword()) :: :ok
  def local_broadcast(topic, message, opts \\ []) do
    scope!(opts) |> :pg.get_local_members(topic) |> Enum.each(&send(&1, message))
  end

  @doc "The subscribers of `topic` on every connected node."
  @spec subscribers(term(), keyword()) :: [pid()]
  def subscribers(topic, opts \\ []), do: :pg.get_members(scope!(opts), topic)

  defp scope!(opts) do
    opts = Keyword.validate!(opts, instance: Keyring)
    scope = scope(opts[:instance])

    unless Process.whereis(scope) do
      raise ArgumentError,
            "no Keyring instance #{inspect(opts[:keyring])} is running (no #{inspect(scope)})"
    end

    scope
  end
end
