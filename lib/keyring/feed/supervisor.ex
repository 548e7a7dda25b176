defmodule Keyring.Feed.Supervisor do
  @moduledoc false
  # Feeds (Keyring.Feed.Server), signed refs (Keyring.Refs.Server) and
  # their replication over the mesh (Keyring.Feed.Replicator) of one
  # instance. They need the store, the identity and PubSub, which start
  # before the planes; the mesh plane is read only at call time.

  use Supervisor

  def child_spec(opts),
    do: %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}, type: :supervisor}

  def start_link(opts),
    do:
      Supervisor.start_link(__MODULE__, opts,
        name: Module.concat([opts[:name], "Feed.Supervisor"])
      )

  @impl Supervisor
  def init(opts) do
    children = [
      {Keyring.Feed.Server, name: opts[:name]},
      {Keyring.Refs.Server, name: opts[:name]},
      {Keyring.Feed.Replicator, name: opts[:name]}
    ]

    Supervisor.init(children, strategy: :one_for_one)
  end
end
