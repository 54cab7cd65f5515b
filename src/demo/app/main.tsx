import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import './demo.css';

createRoot(document.getElementById('root')!).render(<App />);
