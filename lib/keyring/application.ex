defmodule Keyring.Application do
  @moduledoc false
  use Application

  @impl Application
  def start(_type, _args) do
    children =
      if Application.get_env(:keyring, :autostart, false) do
        [{Keyring, Application.get_env(:keyring, :instance, [])}]
      else
        []
      end

    Supervisor.start_link(children, strategy: :one_for_one, name: Keyring.Application.Supervisor)
  end
end
